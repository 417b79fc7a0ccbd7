// Passkeys: the one part of the dashboard that needs JavaScript, because only a script can
// reach navigator.credentials. Each form marked data-passkey="create" or "get" asks its
// data-begin address for the ceremony's options (JSON), hands them to the browser, and
// posts the browser's answer, as JSON in the form's "credential" field (or the field its
// data-answer names: the sudo page carries a form that may have a "credential" of its own),
// like any form.
// Without JavaScript or WebAuthn these forms stay hidden and the rest of the page works.

const fromB64url = (text) =>
  Uint8Array.from(atob(text.replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0));

const toB64url = (buffer) =>
  btoa(String.fromCharCode(...new Uint8Array(buffer)))
    .replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");

// The server's options, with the fields WebAuthn wants as bytes decoded.
function creationOptions(json) {
  const o = json.publicKey;
  o.challenge = fromB64url(o.challenge);
  o.user.id = fromB64url(o.user.id);
  for (const c of o.excludeCredentials || []) c.id = fromB64url(c.id);
  return { publicKey: o };
}

function requestOptions(json) {
  const o = json.publicKey;
  o.challenge = fromB64url(o.challenge);
  for (const c of o.allowCredentials || []) c.id = fromB64url(c.id);
  return { publicKey: o };
}

// The browser's answer, with its bytes encoded for JSON.
function answer(credential) {
  const r = credential.response;
  const response = { clientDataJSON: toB64url(r.clientDataJSON) };
  if (r.attestationObject) {
    response.attestationObject = toB64url(r.attestationObject);
    if (r.getTransports) response.transports = r.getTransports();
  } else {
    response.authenticatorData = toB64url(r.authenticatorData);
    response.signature = toB64url(r.signature);
    if (r.userHandle) response.userHandle = toB64url(r.userHandle);
  }
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    response,
    extensions: credential.getClientExtensionResults(),
  };
}

async function begin(form) {
  const body = new URLSearchParams({ csrf_token: form.elements.csrf_token.value });
  const response = await fetch(form.dataset.begin, {
    method: "POST",
    body,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  });
  let json = null;
  try { json = await response.json(); } catch { /* an HTML error page */ }
  if (!response.ok) {
    const said = json && Array.isArray(json.errors) && json.errors[0];
    throw new Error(said || "The server refused to start. Reload the page and try again.");
  }
  return json;
}

function say(form, text) {
  const box = form.querySelector("[data-passkey-error]");
  if (box) {
    box.textContent = text;
    box.hidden = false;
  }
}

async function run(form, button) {
  button.disabled = true;
  try {
    const json = await begin(form);
    const credential = form.dataset.passkey === "create"
      ? await navigator.credentials.create(creationOptions(json))
      : await navigator.credentials.get(requestOptions(json));
    if (!credential) throw new Error("No passkey was chosen.");
    form.elements[form.dataset.answer || "credential"].value = JSON.stringify(answer(credential));
    form.submit();
  } catch (error) {
    button.disabled = false;
    // NotAllowedError: the person cancelled, or no passkey was there; say so plainly.
    say(form, error.name === "NotAllowedError"
      ? "No passkey was used. Try again, or use another way to sign in."
      : error.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  for (const form of document.querySelectorAll("form[data-passkey]")) {
    form.hidden = false;
    for (const note of document.querySelectorAll("[data-passkey-fallback]")) note.hidden = true;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      run(form, form.querySelector("button[type=submit]"));
    });
  }
});
