//! Diesel's view of the tables in `migrations/`. Kept by hand, in step with the SQL.

diesel::table! {
    accounts (id) {
        id -> Integer,
        name -> Text,
        slug -> Text,
        api_state -> Text,
        created_at -> Timestamp,
        max_token_lifetime_days -> Nullable<Integer>,
        suspended_by_operator -> Bool,
        require_two_factor -> Bool,
        require_sso -> Bool,
        claimed_domain -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Integer,
        email -> Text,
        password_hash -> Text,
        operator -> Bool,
        created_at -> Timestamp,
        last_login_at -> Nullable<Timestamp>,
        email_verified_at -> Nullable<Timestamp>,
        email_assumed -> Bool,
    }
}

diesel::table! {
    memberships (id) {
        id -> Integer,
        user_id -> Integer,
        account_id -> Integer,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    tokens (id) {
        id -> Integer,
        account_id -> Integer,
        user_id -> Nullable<Integer>,
        name -> Text,
        key -> Text,
        secret_digest -> Binary,
        secret_hint -> Text,
        scopes -> Text,
        created_at -> Timestamp,
        expires_at -> Nullable<Timestamp>,
        last_used_at -> Nullable<Timestamp>,
        last_used_ip -> Nullable<Text>,
        revoked_at -> Nullable<Timestamp>,
        revoked_by -> Nullable<Integer>,
        revoke_reason -> Nullable<Text>,
        expiry_logged -> Bool,
        form_nonce -> Nullable<Text>,
        rolled_from -> Nullable<Integer>,
        rolled_to -> Nullable<Integer>,
        rate_limit_per_minute -> Nullable<Integer>,
        maker_token_id -> Nullable<Integer>,
        note -> Text,
        permissions -> Text,
        meta -> Nullable<Text>,
        external_id -> Nullable<Text>,
        credits_remaining -> Nullable<BigInt>,
        credits_refill_interval -> Nullable<Text>,
        credits_refill_amount -> Nullable<BigInt>,
        credits_refilled_at -> Nullable<Timestamp>,
        credits_version -> Integer,
        allowed_ips -> Text,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Integer,
        account_id -> Integer,
        actor_id -> Nullable<Integer>,
        actor_label -> Text,
        action -> Text,
        target -> Text,
        token_id -> Nullable<Integer>,
        ip -> Nullable<Text>,
        at -> Timestamp,
        detail -> Text,
    }
}

diesel::table! {
    cache_invalidations (seq) {
        seq -> Integer,
        token_key -> Nullable<Text>,
        account_id -> Nullable<Integer>,
        at -> Timestamp,
        kind -> Text,
    }
}

diesel::table! {
    clusters (id) {
        id -> Integer,
        account_id -> Integer,
        slug -> Text,
        name -> Text,
        plan -> Text,
        space -> Text,
        state -> Text,
        created_at -> Timestamp,
        release -> Text,
        docs -> BigInt,
        shards_used -> BigInt,
        data_bytes_used -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Integer,
        key_digest -> Text,
        user_id -> Integer,
        state -> Text,
        created_at -> Timestamp,
        last_seen_at -> Timestamp,
        expires_at -> Timestamp,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        via_sso -> Bool,
    }
}

diesel::table! {
    invitations (id) {
        id -> Integer,
        account_id -> Integer,
        email -> Text,
        role -> Text,
        token_digest -> Binary,
        invited_by -> Nullable<Integer>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        cancelled_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    server_settings (name) {
        name -> Text,
        value -> Text,
    }
}

diesel::table! {
    token_usage_days (token_id, day) {
        token_id -> Integer,
        day -> Date,
        succeeded -> BigInt,
        wrong_secret -> BigInt,
        forbidden -> BigInt,
        rate_limited -> BigInt,
        refused -> BigInt,
        failed -> BigInt,
    }
}

diesel::table! {
    token_addresses (token_id, ip) {
        token_id -> Integer,
        ip -> Text,
        first_seen_at -> Timestamp,
        last_seen_at -> Timestamp,
    }
}

diesel::table! {
    throttle_events (id) {
        id -> BigInt,
        kind -> Text,
        key -> Text,
        attempt -> BigInt,
        at -> Timestamp,
    }
}

diesel::table! {
    outbox (id) {
        id -> Integer,
        kind -> Text,
        recipient -> Text,
        payload -> Text,
        message_id -> Text,
        created_at -> Timestamp,
        next_attempt_at -> Timestamp,
        attempts -> Integer,
        claimed_until -> Nullable<Timestamp>,
        sent_at -> Nullable<Timestamp>,
        failed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
    }
}

diesel::table! {
    email_links (id) {
        id -> Integer,
        user_id -> Integer,
        purpose -> Text,
        token_digest -> Binary,
        email -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    mail_preferences (user_id) {
        user_id -> Integer,
        expiry_digest -> Bool,
        revocations -> Bool,
        new_ip -> Bool,
        last_expiry_digest_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    expiry_notices (token_id) {
        token_id -> Integer,
        noticed_at -> Timestamp,
    }
}

diesel::table! {
    address_notices (token_id, ip) {
        token_id -> Integer,
        ip -> Text,
        noticed_at -> Timestamp,
    }
}

diesel::table! {
    two_factor (user_id) {
        user_id -> Integer,
        totp_sealed -> Binary,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        last_used_step -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (id) {
        id -> Integer,
        user_id -> Integer,
        code_digest -> Binary,
        created_at -> Timestamp,
        used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    pending_sign_ins (id) {
        id -> Integer,
        key_digest -> Binary,
        user_id -> Integer,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        failures -> Integer,
    }
}

diesel::table! {
    oidc_identities (id) {
        id -> Integer,
        user_id -> Integer,
        issuer -> Text,
        subject -> Text,
        email -> Nullable<Text>,
        created_at -> Timestamp,
        last_sign_in_at -> Timestamp,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Integer,
        user_id -> Integer,
        credential_id -> Binary,
        user_handle -> Binary,
        name -> Text,
        passkey -> Text,
        created_at -> Timestamp,
        last_used_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    oidc_flows (id) {
        id -> Integer,
        state_digest -> Binary,
        browser_digest -> Binary,
        pkce_verifier -> Text,
        nonce -> Text,
        purpose -> Text,
        user_id -> Nullable<Integer>,
        return_to -> Text,
        created_at -> Timestamp,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    passkey_ceremonies (id) {
        id -> Integer,
        key_digest -> Binary,
        purpose -> Text,
        user_id -> Nullable<Integer>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::joinable!(memberships -> accounts (account_id));
diesel::joinable!(memberships -> users (user_id));
diesel::joinable!(tokens -> accounts (account_id));
diesel::joinable!(audit_events -> accounts (account_id));
diesel::joinable!(clusters -> accounts (account_id));
diesel::joinable!(invitations -> accounts (account_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(token_usage_days -> tokens (token_id));
diesel::joinable!(token_addresses -> tokens (token_id));
diesel::joinable!(email_links -> users (user_id));
diesel::joinable!(mail_preferences -> users (user_id));
diesel::joinable!(expiry_notices -> tokens (token_id));
diesel::joinable!(address_notices -> tokens (token_id));
diesel::joinable!(two_factor -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(pending_sign_ins -> users (user_id));
diesel::joinable!(oidc_identities -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(passkey_ceremonies -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    accounts,
    users,
    memberships,
    tokens,
    audit_events,
    cache_invalidations,
    clusters,
    sessions,
    invitations,
    server_settings,
    token_usage_days,
    token_addresses,
    outbox,
    email_links,
    mail_preferences,
    expiry_notices,
    address_notices,
    two_factor,
    recovery_codes,
    pending_sign_ins,
    oidc_identities,
    oidc_flows,
    passkeys,
    passkey_ceremonies,
);
