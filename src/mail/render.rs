//! Each message as a subject, a plain-text body and an HTML alternative, from the askama
//! templates in `templates/mail/`: `KIND.txt` (not escaped) and `KIND.html` (escaped, in
//! `base.html`'s frame). Rendered when the message is sent, on the server's address.

use askama::Template;

use crate::domain::{ExpiringToken, Mail};

/// A message ready for the envelope.
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
    /// A notice's unsubscribe page; `None` for security mails.
    pub unsubscribe: Option<String>,
}

/// Declares a kind's text and HTML templates over the same fields.
macro_rules! mail_templates {
    ($text:ident, $html:ident, $txt_path:literal, $html_path:literal, { $($field:ident: $ty:ty),* $(,)? }) => {
        #[derive(Template)]
        #[template(path = $txt_path)]
        struct $text<'a> {
            base: &'a str,
            $($field: $ty,)*
        }

        #[derive(Template)]
        #[template(path = $html_path)]
        struct $html<'a> {
            base: &'a str,
            $($field: $ty,)*
        }
    };
}

mail_templates!(VerifyText, VerifyHtml, "mail/verify_email.txt", "mail/verify_email.html", { link: String });
mail_templates!(AttemptText, AttemptHtml, "mail/sign_up_attempt.txt", "mail/sign_up_attempt.html", { email: &'a str });
mail_templates!(ResetText, ResetHtml, "mail/password_reset.txt", "mail/password_reset.html", { link: String });
mail_templates!(ChangedText, ChangedHtml, "mail/password_changed.txt", "mail/password_changed.html", { email: &'a str });
mail_templates!(ConfirmText, ConfirmHtml, "mail/confirm_new_email.txt", "mail/confirm_new_email.html", { link: String });
mail_templates!(EmailChangedText, EmailChangedHtml, "mail/email_changed.txt", "mail/email_changed.html", { new_email: &'a str });
mail_templates!(InviteText, InviteHtml, "mail/invitation.txt", "mail/invitation.html", {
    link: String, account: &'a str, role: &'a str, inviter: &'a str,
});
mail_templates!(DigestText, DigestHtml, "mail/expiry_digest.txt", "mail/expiry_digest.html", { tokens: &'a [ExpiringToken] });
mail_templates!(RevokedText, RevokedHtml, "mail/token_revoked.txt", "mail/token_revoked.html", {
    key: &'a str, name: &'a str, account: &'a str, by: &'a str, reason: &'a str,
});
mail_templates!(TwoFactorText, TwoFactorHtml, "mail/two_factor_changed.txt", "mail/two_factor_changed.html", { email: &'a str, change: &'a str });
mail_templates!(PolicyText, PolicyHtml, "mail/two_factor_policy.txt", "mail/two_factor_policy.html", {
    account: &'a str, required: bool, by: &'a str,
});
mail_templates!(NewIpText, NewIpHtml, "mail/new_address.txt", "mail/new_address.html", {
    key: &'a str, name: &'a str, account: &'a str, ip: &'a str,
});

/// Renders `mail` for `to`, with links on `base` (the server's address, no trailing
/// slash). The error says why, for the operator console.
pub fn render(mail: &Mail, to: &str, base: &str) -> Result<Rendered, String> {
    let both = |subject: &str, text: askama::Result<String>, html: askama::Result<String>| {
        let fail = |e: askama::Error| format!("the {} template failed to render: {e}", mail.kind());
        Ok::<_, String>(Rendered {
            subject: subject.to_string(),
            text: text.map_err(fail)?,
            html: html.map_err(fail)?,
            unsubscribe: mail.is_notice().then(|| format!("{base}/account/notices")),
        })
    };
    macro_rules! pair {
        ($subject:expr, $text:ident, $html:ident { $($field:ident: $value:expr),* $(,)? }) => {
            both(
                $subject,
                $text { base, $($field: $value,)* }.render(),
                $html { base, $($field: $value,)* }.render(),
            )
        };
    }
    match mail {
        Mail::VerifyEmail { token } => pair!(
            "Verify your email address for Keyward",
            VerifyText,
            VerifyHtml {
                link: format!("{base}/verify-email/{token}"),
            }
        ),
        Mail::SignUpAttempt {} => pair!(
            "Someone tried to sign up to Keyward with your address",
            AttemptText,
            AttemptHtml { email: to }
        ),
        Mail::PasswordReset { token } => pair!(
            "Reset your Keyward password",
            ResetText,
            ResetHtml {
                link: format!("{base}/password-reset/{token}"),
            }
        ),
        Mail::PasswordChanged {} => pair!(
            "Your Keyward password was changed",
            ChangedText,
            ChangedHtml { email: to }
        ),
        Mail::ConfirmNewEmail { token } => pair!(
            "Confirm your new email address for Keyward",
            ConfirmText,
            ConfirmHtml {
                link: format!("{base}/confirm-email/{token}"),
            }
        ),
        Mail::EmailChanged { new_email } => pair!(
            "Your Keyward sign-in now uses another email address",
            EmailChangedText,
            EmailChangedHtml {
                new_email: new_email,
            }
        ),
        Mail::Invitation {
            token,
            account,
            role,
            inviter,
        } => pair!(
            &format!("You are invited to join {account} on Keyward"),
            InviteText,
            InviteHtml {
                link: format!("{base}/invitations/{token}"),
                account: account,
                role: role,
                inviter: inviter,
            }
        ),
        Mail::ExpiryDigest { tokens } => pair!(
            &format!(
                "{} of your Keyward API tokens expire{} within a week",
                tokens.len(),
                if tokens.len() == 1 { "s" } else { "" }
            ),
            DigestText,
            DigestHtml { tokens: tokens }
        ),
        Mail::TokenRevoked {
            key,
            name,
            account,
            by,
            reason,
        } => pair!(
            &format!("Your Keyward API token {name} was revoked"),
            RevokedText,
            RevokedHtml {
                key: key,
                name: name,
                account: account,
                by: by,
                reason: reason,
            }
        ),
        Mail::NewAddress {
            key,
            name,
            account,
            ip,
        } => pair!(
            &format!("Your Keyward API token {name} was used from a new address"),
            NewIpText,
            NewIpHtml {
                key: key,
                name: name,
                account: account,
                ip: ip,
            }
        ),
        Mail::TwoFactorChanged { change } => pair!(
            "Your Keyward two-factor sign-in changed",
            TwoFactorText,
            TwoFactorHtml {
                email: to,
                change: change,
            }
        ),
        Mail::TwoFactorPolicyChanged {
            account,
            required,
            by,
        } => pair!(
            &format!("{account} changed its two-factor sign-in policy"),
            PolicyText,
            PolicyHtml {
                account: account,
                required: *required,
                by: by,
            }
        ),
    }
}
