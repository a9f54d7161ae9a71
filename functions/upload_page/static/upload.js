// The upload page: vod-js-sdk-v6 (global TcVod) uploads straight to VOD; signatures come from the sign
// function, one per VOD call, for the signed-in user; progress of the task flow from the uploads function.
//
// The token: the app hands it over, either in the link (#token=…, removed from the address bar at once) or,
// when it embeds the page in an iframe, by postMessage({type: "vod-upload-token", token}) from an origin in
// UPLOAD_PAGE_FRAME_ANCESTORS (the page says {type: "vod-upload-ready"} and, when the token is refused,
// {type: "vod-upload-token-refused"} to its parent). It lives in sessionStorage, so a reload in the same tab
// resumes the upload without asking for it again; it never leaves the page except to the API.
// The parent also hears of each upload: {type: "vod-upload-done", fileId, user} once VOD has it, then
// {type: "vod-upload-status", fileId, user, status} as its status changes (what the uploads function says); `user`
// is whom the page uploads for (the token's, as "Uploading as" shows it; null for a token that is not a JWT).
"use strict";
(() => {
  const config = JSON.parse(document.body.dataset.config);
  const $ = (id) => document.getElementById(id);
  // What the page says, in its language (static/messages.json; the server chose it: ?lang=, UPLOAD_PAGE_LANGUAGE or
  // Accept-Language), with its {names} filled in one pass: a value that holds "{x}" (a file's name) is shown as is.
  const t = (key, values = {}) =>
    config.messages[key].replace(/\{(\w+)\}/g, (whole, name) =>
      Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : whole,
    );
  const TOKEN_KEY = "vod-upload-token";
  const USER_CLAIM = config.userClaim || "sub";
  const OWNER_KEY = "vod-upload-owner"; // whose saved upload sessions localStorage holds (the token's subject)
  // Said when an upload has heard nothing of the storage service for this long (see start)
  const SILENT_START_MS = 20000;
  const SILENT_START = t("silentStart");
  const CANCEL_ASK = t("cancelAsk");
  const FINAL = new Set(["uploaded", "finished", "failed", "deleted"]);
  // The server's 403 codes that are its policy (shared/errors.py), not a refused sign-in.
  const NOT_SIGN_IN = new Set(["policy_violation", "user_id_too_long", "cors_origin_not_allowed"]);
  // Framed, the app hands the token over itself: there is no link to open
  const FRAMED = window.parent !== window;
  const SIGNED_OUT = t(FRAMED ? "signedOutFramed" : "signedOut");

  // A browser may refuse a framed page its storage (third-party cookies blocked: Chrome's incognito, Safari):
  // then the token lives in the page alone, and the SDK saves no sessions (it guards its own storage).
  const fromStorage = (read) => {
    try {
      return read();
    } catch (error) {
      return null;
    }
  };
  let token = fromStorage(() => sessionStorage.getItem(TOKEN_KEY));
  let uploader = null; // the SDK's current Uploader
  let paused = null; // the paused one: its saved session is what Resume continues and Cancel forgets
  let files = null; // {video, cover} being uploaded (kept for resume)
  let apiError = null; // why the last signature request failed, shown instead of the SDK's generic error
  let lastAnnounced = 0;
  let state = "idle"; // idle, starting (nothing to pause yet), stalled (COS silent), uploading, paused, finishing
  let following = 0; // which upload the status loop follows: a newer one ends the older loop
  let toldStatus = null; // {fileId, status} the embedding app heard last: a loop following it again says it once
  let refusedWhileFollowing = null; // the upload whose following stopped on a refused sign-in: a new token resumes it
  let followOnPost = false; // ... also one the app posts: not after one it posted was refused at once
  let uncommitted = null; // all in COS, no signature for its Commit: Upload again, or the same user's next token, commits it
  let commitOnPost = false; // ... also one the app posts: not after one it posted was refused at once
  let session = null; // the VOD session of the upload being sent, as the page keeps it (see start)
  const cancelled = new WeakSet(); // uploaders cancelled: an Apply the SDK still retries must not save their session
  let renewalRefused = null; // paused: its new COS keys were refused a signature; the same user's next token resumes it
  let refocus = false; // a focused button was hidden: the next one shown takes the focus
  let retry = null; // an upload that failed midway goes on by itself: "sign-in" (its user's next token) or "offline"
  let unattended = false; // the upload under way was started by the page (a token, the connection back), not the user
  let signed = false; // ... and has had a signature since
  // The SDK (4 MB) loads after this script, so that the token leaves the address bar before it arrives: an
  // upload started sooner waits for it. True once it has run, false if it could not load.
  const sdkLoaded = new Promise((resolve) => {
    if (window.TcVod) return resolve(true);
    $("sdk").addEventListener("load", () => resolve(true));
    $("sdk").addEventListener("error", () => resolve(false));
  });

  class ApiError extends Error {
    constructor(status, message, signIn = false) {
      super(message);
      this.status = status;
      this.signIn = signIn; // the sign-in was refused (or is missing): a new token may help
    }
  }

  // --- the token ------------------------------------------------------------------------------------
  // `posted`: by the embedding app (postMessage), which may answer each refusal with another token (a link is opened
  // by the user): a token it posts that is refused at once is the last it posts that the page tries by itself.
  function setToken(value, posted = false) {
    // Mid-upload, only the same user's token (the app renewing it): VOD credits an upload to whoever began
    // it, so another user's token would sign its last calls and then look for it in vain.
    if (["starting", "uploading", "stalled", "finishing"].includes(state) && !sameUser(value, token)) {
      fail(t("anotherSignIn"));
      return;
    }
    const previous = token;
    token = value;
    fromStorage(() => sessionStorage.setItem(TOKEN_KEY, value));
    $("signed-out").hidden = true;
    showUser();
    if (!sameUser(value, previous)) {
      following += 1; // the upload shown is the previous user's: no longer asked after, nor shown
      $("result").hidden = true;
      retry = null;
      // The previous user's paused upload is not this user's to resume (Resume starts theirs afresh): as a
      // cancelled one, an Apply the SDK still retries for it must not leave its session to the next start.
      if (paused) {
        cancelled.add(paused);
        forgetSession(paused);
      }
      forgetOtherUsersSessions(); // the previous user's saved sessions, and their id, leave this browser now
      // Nor is the upload to follow again, or to commit: VOD credits an upload to whoever began it
      refusedWhileFollowing = uncommitted = null;
    }
    const refused = refusedWhileFollowing;
    if (refused && (followOnPost || !posted)) {
      refusedWhileFollowing = null;
      follow(refused, posted);
    }
    if (uncommitted && (commitOnPost || !posted)) commitAgain(uncommitted, posted);
    const stalled = renewalRefused;
    renewalRefused = null;
    if (stalled && stalled === paused && sameUser(value, previous)) {
      say(t("resuming"));
      start(true);
    } else if (retry === "sign-in" && state === "idle" && files) {
      say(t("resuming"));
      start(true);
    }
    tellBusy(); // another user's token: what the previous one's upload waited for is over
  }

  // The SDK forgets nothing of an upload whose Commit failed for want of a signature (its session key is kept
  // until a signature comes): committing it is all that is left, instead of sending the whole video again.
  async function commitAgain(current, posted = false) {
    uncommitted = null;
    retry = null; // this is the retry: a later "online" must not send the files again as a new upload
    buttons("finishing");
    fail("");
    apiError = null;
    say(t("finishing"));
    let result;
    try {
      result = await current.commitUploadUGC();
    } catch (error) {
      buttons("idle");
      say("");
      if (!uncommittedAgain(current, error, posted)) {
        fail(apiError ? apiError.message : t("failedTryAgain", { why: (error && error.message) || error }));
      }
      return;
    }
    forgetSession(current);
    finished(result.fileId);
  }

  // Whether the upload, all in COS, failed only for want of Commit's signature (the SDK asks for it outside
  // its retries: one refused or failed request ends the upload) or of VOD's answer to Commit (the SDK marks a
  // request that got none, or an HTTP error, as code 500): then committing it is all that is left.
  // `posted`: the Commit was tried with a token the embedding app posted.
  function uncommittedAgain(current, error, posted = false) {
    const unanswered = !apiError && error && error.code === 500;
    if (!apiError && !unanswered) return false; // VOD's own refusal of Commit: the upload starts over
    uncommitted = current;
    const signIn = apiError && apiError.signIn;
    // A token the app posted, refused at once: the next it posts is not tried (an app that answers each refusal
    // with another refused token would make the page ask the sign function for ever); a link, or Upload, is.
    commitOnPost = Boolean(signIn) && !posted;
    retry = !signIn && !navigator.onLine ? "offline" : null; // Commit goes on by itself once the device is back
    if (retry) {
      fail(t("commitOffline"));
      return true;
    }
    const why = apiError ? apiError.message : t("vodNoAnswer", { why: error.message || error });
    fail(t(commitOnPost ? "uncommittedSignIn" : "uncommittedUpload", { why }));
    return true;
  }

  // Whom uploads will be credited to, in plain sight: a link can carry anyone's token.
  function showUser() {
    const sub = token && tokenSubject(token);
    $("user").textContent = sub || "";
    $("signed-in").hidden = !sub;
  }

  // By hand, not URLSearchParams: that reads "+" as a space, and a token that is not a JWT may hold one.
  function tokenFromLink() {
    const parts = location.hash.slice(1).split("&");
    const at = parts.findIndex((part) => part.startsWith("token="));
    const raw = at < 0 ? "" : parts[at].slice("token=".length);
    if (!raw) return;
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch (error) {
      // not percent-encoded after all ("%" in a token): taken as written
    }
    parts.splice(at, 1);
    const rest = parts.join("&");
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
    setToken(value);
  }

  // A link opened again in this tab changes only the fragment: no new page load reads it.
  window.addEventListener("hashchange", tokenFromLink);

  function tellParent(message) {
    if (window.parent === window) return;
    for (const origin of config.tokenOrigins) window.parent.postMessage(message, origin);
  }

  window.addEventListener("message", (event) => {
    // The embedding window's own: not another frame of its page, even one of its origin (a widget, say)
    if (event.source !== window.parent || !config.tokenOrigins.includes(event.origin)) return;
    const data = event.data;
    if (data && data.type === "vod-upload-token" && typeof data.token === "string" && data.token) {
      setToken(data.token, true);
    }
  });

  // --- API calls --------------------------------------------------------------------------------------
  async function api(url, init) {
    if (!token) throw new ApiError(401, SIGNED_OUT, true);
    let headers;
    try {
      headers = new Headers({ Authorization: "Bearer " + token, ...(init.headers || {}) });
    } catch (error) {
      // A token no header can carry (a line break, a character outside Latin-1): a link damaged on its way
      tellParent({ type: "vod-upload-token-refused" });
      throw new ApiError(401, t("linkDamaged"), true);
    }
    let response;
    try {
      response = await fetch(url, { ...init, headers, credentials: "omit", cache: "no-store" });
    } catch (error) {
      // What the browser shows of a refused CORS preflight, too: it hides the answer from the page.
      console.warn(`${url} did not answer: if it is up, does its CORS_ALLOW_ORIGINS have ${location.origin}?`);
      throw new ApiError(0, t("apiUnreachable"));
    }
    if (response.status === 401 || response.status === 403) {
      const body = await response.json().catch(() => null);
      const error = body && body.error ? body.error : null;
      const why = (error ? error.message : t("refused")) + reference(response);
      // Our own 403s are the server's policy, not the sign-in: signing in again would not help.
      if (response.status === 403 && error && NOT_SIGN_IN.has(error.code)) {
        throw new ApiError(403, t("notAllowed", { why }));
      }
      tellParent({ type: "vod-upload-token-refused" });
      throw new ApiError(response.status, t(FRAMED ? "signInRefusedFramed" : "signInRefused", { why }), true);
    }
    return response;
  }

  // The function's request id, which its log line has too: what a user quotes to support about a refusal. Only one
  // of the form the functions give (a gateway in front may set another, or none).
  function reference(response) {
    const id = response.headers.get("X-Request-Id");
    return id && /^[A-Za-z0-9._:-]{1,128}$/.test(id) ? t("requestId", { id }) : "";
  }

  // Called by the SDK before every VOD call (Prepare, Apply, Commit): a fresh one-time signature each time.
  async function getSignature() {
    try {
      const response = await api(config.signatureUrl, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: "{}",
      });
      const body = await response.json().catch(() => null);
      if (!response.ok || !body || typeof body.signature !== "string") {
        const why = (body && body.error ? body.error.message : `HTTP ${response.status}`) + reference(response);
        throw new ApiError(response.status, t("noSignature", { why }));
      }
      signed = true;
      return body.signature;
    } catch (error) {
      apiError = error;
      // Asked while the video is sent: the SDK renews COS's temporary keys near their end and, refused, neither
      // fails nor goes on (the upload would hang for good). It is paused instead, its session kept, saying why.
      if (state === "uploading" && uploader) pauseStalled(error);
      throw error;
    }
  }

  function pauseStalled(error) {
    pause();
    // The SDK may have forgotten the session already (a failed renewal's ApplyUploadUGC deletes it before
    // it asks for a signature again): put the page's copy back, or Resume would send the whole video anew.
    if (session) paused.setStorage(paused.sessionName, session);
    if (error.signIn) renewalRefused = paused;
    fail(t(error.signIn ? "pausedSignIn" : "pausedResume", { why: error.message }));
  }

  // --- progress ---------------------------------------------------------------------------------------
  function size(bytes) {
    const units = ["B", "KB", "MB", "GB"];
    let value = bytes;
    let unit = 0;
    while (value >= 1024 && unit < units.length - 1) {
      value /= 1024;
      unit += 1;
    }
    return `${value.toFixed(unit ? 1 : 0)} ${units[unit]}`;
  }

  function showProgress(which, info) {
    const percent = Math.round((info.percent || 0) * 100);
    // Pause and Cancel only once COS has the upload (before, the SDK has nothing to cancel; Cancel alone once
    // COS is silent), and no longer once the video is all sent (Commit follows and cannot be stopped).
    if (state === "starting" || state === "stalled") {
      buttons("uploading");
      if ($("error").textContent === SILENT_START) fail(""); // it answered after all
    }
    // A resumed upload's first report (and a paused one's late last) says 0 bytes: not what COS has, which follows
    if (!info.loaded && $(`${which}-progress`).value > 0) return;
    $(`${which}-progress`).value = percent;
    $(`${which}-progress`).textContent = `${percent}%`;
    const speed = info.speed ? t("speed", { speed: size(info.speed) }) : "";
    $(`${which}-figures`).textContent =
      t("figures", { percent, loaded: size(info.loaded || 0), total: size(info.total || 0) }) + speed;
    // Spoken every 10 s at most, not on every progress event, by a live region of its own (shown, it would lag
    // the figures); the end is said when COS has the video (media_upload): a failing upload also reports all its
    // bytes as sent, as its last progress.
    const now = Date.now();
    if (which === "video" && percent < 100 && now - lastAnnounced > 10000) {
      lastAnnounced = now;
      $("progress-said").textContent = t("progressSaid", { percent });
    }
  }

  function videoStored() {
    if (state === "uploading") buttons("finishing"); // Commit follows and cannot be stopped
    say(t("finishing"));
  }

  function say(text) {
    $("status").textContent = text;
  }

  function fail(text) {
    $("error").textContent = text;
    tellBusy(); // what leaves an upload waiting (for its Commit, a sign-in, the connection) says why here
  }

  // Unfinished: leaving the page now would stop an upload, or one waiting to go on by itself.
  const unfinished = () => state !== "idle" || Boolean(uncommitted || retry);
  let toldBusy = false;

  // The embedding app hears when that changes, so that it can ask its user before it removes the frame (or navigates
  // within its own page), which the browser does not ask about.
  function tellBusy() {
    if (unfinished() === toldBusy) return;
    toldBusy = !toldBusy;
    tellParent({ type: "vod-upload-busy", busy: toldBusy });
  }

  function buttons(next) {
    const focused = document.activeElement;
    state = next;
    $("start").hidden = state !== "idle";
    $("pause").hidden = state !== "uploading";
    $("resume").hidden = state !== "paused";
    $("cancel").hidden = !["uploading", "paused", "stalled"].includes(state);
    $("video").disabled = $("cover").disabled = state !== "idle";
    // A keyboard user's button that was just hidden hands its focus to the one that takes its place.
    if (focused && focused.tagName === "BUTTON" && focused.hidden) refocus = true;
    // Cancel last: the one to take the focus only when it is the only control (stalled)
    const shown = ["pause", "resume", "start", "cancel"].map((id) => $(id)).find((button) => !button.hidden);
    if (refocus && shown) {
      shown.focus();
      refocus = false;
    }
    tellBusy();
  }

  // Stops every COS transfer of an uploader (the SDK's cancel() stops the video's only, not the cover's).
  function stopTransfers(current) {
    current.cancel();
    const cos = current.cos;
    for (const task of cos && cos.getTaskList ? cos.getTaskList() : []) cos.cancelTask(task.id);
  }

  // --- uploading ------------------------------------------------------------------------------------
  // vod-js-sdk-v6 keeps a paused upload's VOD session in localStorage ("webugc_" and a digest of the file's
  // name and size) and resumes it for whoever chooses that file next. VOD gives a resumed session the
  // sourceContext it was opened with, so another user of this browser would finish, and so give away, the
  // first one's upload: when the signed-in user changes, the saved sessions are forgotten; and the COS SDK's record
  // of their parts (digests of the files, the multipart uploads' ids), which it keeps 30 days.
  async function forgetOtherUsersSessions() {
    const owner = await tokenOwner(token);
    try {
      if (localStorage.getItem(OWNER_KEY) === owner) return;
      for (const key of Object.keys(localStorage)) {
        if (key.startsWith("webugc_") || key === "cos_sdk_upload_cache") localStorage.removeItem(key);
      }
      localStorage.setItem(OWNER_KEY, owner);
    } catch (error) {
      // no localStorage (a private window, say): then the SDK cannot save sessions either
    }
  }

  // The SDK knows a saved session by the file's name and size only, and the COS SDK then reuses the parts
  // COS holds without comparing them: a file changed since (edited in place, keeping its time; or another of
  // the same name and size) would be stored stitched together from two versions. So the page keeps, beside
  // each session, its file's fingerprint (its time and digests of three slices, as vod-upload's checkpoints
  // do), through the SDK's own storage (its keys a digest: no file name in clear, and forgotten with the
  // sessions): another file starts a new session. Without Web Crypto (outside a secure context) only the very
  // file this page already started resumes (Resume, trying again), not one chosen anew after a reload.
  const PRINT = "fingerprint:";
  const SLICE = 64 * 1024;
  const startedFiles = new WeakSet();

  async function fingerprint(file) {
    try {
      const middle = Math.max(0, Math.floor(file.size / 2) - SLICE / 2);
      const slices = [0, middle, Math.max(0, file.size - SLICE)].map((at) => file.slice(at, at + SLICE));
      const digests = await Promise.all(
        slices.map(async (slice) => crypto.subtle.digest("SHA-256", await slice.arrayBuffer())),
      );
      const hex = digests.map((d) => Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join(""));
      return `${file.lastModified}:${hex.join(":")}`;
    } catch (error) {
      return null; // no crypto.subtle, or the file cannot be read (then the SDK will say so)
    }
  }

  function resumeOnlyTheSameFile(current, file, print) {
    const same = print === null ? startedFiles.has(file) : current.getStorage(PRINT + current.sessionName) === print;
    if (!same) current.delStorage(current.sessionName);
    if (print === null) current.delStorage(PRINT + current.sessionName);
    else current.setStorage(PRINT + current.sessionName, print);
    startedFiles.add(file);
  }

  // One upload of a video at a time in this browser. Its tabs share the SDK's saved sessions: a second tab would
  // take over the first's session, and one of them end by sending the whole video again, as a second file. Held
  // from start to the upload's end (a paused upload keeps it); a tab closed lets go of it by itself.
  const ELSEWHERE = t("elsewhere");
  let videoLock = null; // {key, release} of the video this tab uploads

  async function lockVideo(file) {
    const key = `vod-upload:${file.name}_${file.size}`; // as the SDK names the video's session
    if (videoLock && videoLock.key === key) return true;
    unlockVideo();
    if (!navigator.locks) return true; // outside a secure context: as before
    const release = await new Promise((resolve) => {
      navigator.locks
        .request(key, { ifAvailable: true }, (lock) => {
          if (!lock) return resolve(null);
          return new Promise((done) => resolve(done)); // held until done() is called
        })
        .catch(() => resolve(() => {})); // refused, as storage is to a framed page: no lock, as without locks
    });
    if (release) videoLock = { key, release };
    return Boolean(release);
  }

  function unlockVideo() {
    if (videoLock) videoLock.release();
    videoLock = null;
  }

  function forgetSession(current) {
    current.delStorage(current.sessionName);
    current.delStorage(PRINT + current.sessionName);
  }

  // The user a JWT names (its `sub`, or the claim AUTH_JWT_USER_CLAIM names: the API's user), read, not verified
  // (the API verifies the token); null for any other token.
  function tokenSubject(value) {
    try {
      const json = new TextDecoder().decode(
        Uint8Array.from(atob(value.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0)),
      );
      const claims = JSON.parse(json);
      const user = Object.prototype.hasOwnProperty.call(claims, USER_CLAIM) ? claims[USER_CLAIM] : null;
      return typeof user === "string" && user ? user : null;
    } catch (error) {
      return null; // not a JWT
    }
  }

  // Two tokens of one user: the same user claim; other tokens tell nobody apart but themselves.
  function sameUser(a, b) {
    const subject = tokenSubject(a);
    return subject !== null ? subject === tokenSubject(b) : a === b;
  }

  // The token's user claim, else a digest of the token itself, else (no WebCrypto) nobody the next start will
  // recognise: then nothing is resumed across starts.
  async function tokenOwner(value) {
    const sub = tokenSubject(value);
    if (sub !== null) return USER_CLAIM + ":" + sub;
    try {
      const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
      return "token:" + Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
    } catch (error) {
      return "unknown:" + Math.random();
    }
  }

  // What VOD refuses in a name (legal in file names on most systems), replaced as vod-upload does: else VOD
  // refuses the upload on every try.
  const refusedInNames = /[\\/:*?"<>|\u0000-\u001f\u007f]/g;

  // The video's name without its extension, as the SDK would send it.
  function mediaName(fileName) {
    const dot = fileName.lastIndexOf(".");
    const stem = dot > 0 ? fileName.slice(0, dot) : fileName;
    return stem.replace(refusedInNames, "_");
  }

  // The SDK sends the cover's name (less its extension) unchecked: a copy under a name VOD takes.
  function coverFile(file) {
    const dot = file.name.lastIndexOf(".");
    const name = file.name.slice(0, dot).replace(refusedInNames, "_") + file.name.slice(dot);
    return name === file.name ? file : new File([file], name, { type: file.type, lastModified: file.lastModified });
  }

  async function start(byThePage = false) {
    const before = state;
    buttons("starting"); // at once: no second start while the owner check below is awaited
    paused = null;
    uncommitted = null; // a new upload instead
    retry = null;
    unattended = byThePage;
    signed = false;
    fail("");
    apiError = null;
    await forgetOtherUsersSessions();
    if (!window.TcVod) say(t("loadingSdk"));
    if (!(await sdkLoaded)) {
      buttons(before);
      say("");
      fail(t("sdkFailed"));
      return;
    }
    if (!(await lockVideo(files.video))) {
      buttons(before);
      say("");
      fail(ELSEWHERE);
      return;
    }
    const print = await fingerprint(files.video);
    let current;
    try {
      const tcVod = new TcVod.default({ getSignature, allowReport: false, enableResume: true });
      current = tcVod.upload({
        mediaFile: files.video,
        mediaName: mediaName(files.video.name),
        coverFile: files.cover ? coverFile(files.cover) : undefined,
      });
    } catch (error) {
      // The SDK refuses some inputs at once (e.g. a cover it cannot read): say so, don't die silently.
      unlockVideo();
      buttons(before);
      fail(t("cannotUpload", { why: (error && error.message) || error }));
      return;
    }
    resumeOnlyTheSameFile(current, files.video, print); // before the SDK reads its session (after a signature)
    uploader = current;
    // The SDK forgets its VOD session when a transfer or its Apply fails (a dropped connection, say), so
    // trying again would send the whole file anew: the page keeps a copy (the one this upload resumes, if
    // any, else the one Apply gives), and puts it back on failure while the video is not all in COS yet
    // (then the parts COS has are not sent again).
    session = current.getStorage(current.sessionName);
    let stored = false;
    if (before !== "paused") {
      // Not the last upload's figures (its 100%, or a failed one's, which counts every byte as sent) until the
      // SDK's first progress, which comes after Prepare and Apply; a resumed one's stay until then
      for (const which of ["video", "cover"]) {
        $(`${which}-progress`).value = 0;
        $(`${which}-progress`).textContent = "0%";
        $(`${which}-figures`).textContent = "";
      }
      $("progress-said").textContent = "";
    }
    $("progress").hidden = false;
    $("cover-meter").hidden = !files.cover;
    // An Apply that got no answer (code 500: a blip) makes the SDK forget the session before it tries again,
    // and that try would open a new one: the copy is put back first (after the SDK's delete, hence a microtask),
    // also while paused (the SDK goes on retrying). A refusal (an expired session, say) is left to start a new
    // session, as the SDK means it to.
    let applied = false;
    current.on("report_apply", (report) => {
      const err = report && report.err;
      if (cancelled.has(current)) {
        Promise.resolve().then(() => forgetCancelled(current));
        return;
      }
      if (!err) applied = true;
      else if (err.code === 500 && session && (uploader === current || paused === current)) {
        Promise.resolve().then(() => current.setStorage(current.sessionName, session));
      }
    });
    // The last try of a renewal's Apply (new COS keys mid-upload) failed: the SDK throws where nothing catches
    // it, and the upload would wait for ever. It is paused instead, saying why. Each of the SDK's tries calls
    // the instance's applyUploadUGC with its number, and several renewals may run at once: only one that has
    // used up its own tries counts.
    const applyUploadUGC = current.applyUploadUGC.bind(current);
    current.applyUploadUGC = async (attempt, ...rest) => {
      try {
        return await applyUploadUGC(attempt, ...rest);
      } catch (error) {
        const last = (attempt || 0) === current.applyRequestRetryCount; // the SDK's first try passes null
        if (last && applied && state === "uploading" && uploader === current) {
          const code = error && error.code;
          const why = error && error.message;
          pauseStalled({ message: code === 500 ? t("renewalUnreachable") : t("renewalRefused", { why }) });
        }
        throw error;
      }
    };
    current.on("media_progress", (info) => {
      if (uploader !== current) return; // paused or cancelled: a late report of its aborted transfers
      session = current.getStorage(current.sessionName) || session; // Apply's
      showProgress("video", info);
    });
    current.on("cover_progress", (info) => uploader === current && showProgress("cover", info));
    current.on("media_upload", () => {
      stored = true;
      videoStored();
    });
    say(t("uploadingFile", { name: files.video.name }));
    lastAnnounced = Date.now();
    // Until the first progress there is nothing to pause, and neither SDK gives up on a storage service that
    // takes the connection but never answers (a proxy or firewall that holds it): say so, and let it be
    // cancelled once COS has the upload (its transfers can be stopped; VOD's Apply the SDK gives up on itself).
    const silent = () => {
      if (uploader !== current || state !== "starting") return;
      if (!current.cos) return void setTimeout(silent, 1000);
      buttons("stalled");
      fail(SILENT_START);
    };
    setTimeout(silent, SILENT_START_MS);
    current.done().then(
      (result) => {
        if (uploader !== current && paused !== current) return; // cancelled
        uploader = paused = null;
        forgetSession(current); // committed: the SDK has dropped its session, and its fingerprint goes with it
        finished(result.fileId);
      },
      (error) => {
        if (uploader !== current) return; // paused or cancelled: this uploader's end is expected
        uploader = null;
        unlockVideo(); // another tab may go on with it
        // Ended as a pause ends (the cover's transfer too): else the COS SDK keeps the failed multipart upload
        // marked in use until the page reloads, and the next start would begin another instead of going on.
        if (current.cos) stopTransfers(current);
        const resumable = !stored && Boolean(session);
        if (resumable) current.setStorage(current.sessionName, session);
        buttons("idle");
        $("progress").hidden = true; // its figures would say everything was sent
        say("");
        // The only signature asked for once the video is in COS is Commit's: nothing else is left to do.
        if (stored && uncommittedAgain(current, error)) return;
        // A refused sign-in, or a lost connection: the upload goes on by itself when that is over. Not after a
        // token the page tried by itself was refused at once: an embedding app that answers each refusal with
        // another refused token would make it ask the sign function for ever.
        const signIn = apiError && apiError.signIn;
        retry = signIn ? (unattended && !signed ? null : "sign-in") : navigator.onLine ? null : "offline";
        const why = apiError ? apiError.message : (error && error.message) || error;
        // Each message in two forms: the second says that the upload goes on from where it stopped
        const [goesOn, press, offline, again] = resumable
          ? ["goesOnFromWhereItStopped", "pressUploadFromWhereItStopped", "offlineFromWhereItStopped", "againFromWhereItStopped"]
          : ["goesOn", "pressUpload", "offline", "again"];
        if (retry === "sign-in") fail(t(goesOn, { why }));
        else if (signIn) fail(t(press, { why }));
        else if (retry === "offline") fail(t(offline));
        else if (apiError) fail(why);
        else fail(t(again, { why }));
      },
    );
  }

  function pause() {
    const current = uploader;
    uploader = null;
    stopTransfers(current); // the SDK keeps its session (localStorage): resume sends only the missing parts
    paused = current;
    buttons("paused");
    say(t("paused"));
  }

  // A cancelled upload's Apply that the SDK still retried has saved (or, failing, deleted) the session under
  // the file's name and size: forgotten, unless a new upload of that same file now keeps its own session there.
  function forgetCancelled(old) {
    const live = uploader || paused;
    const key = live && live !== old && live.sessionName === old.sessionName ? session || live.vodSessionKey : null;
    if (key) old.setStorage(old.sessionName, key);
    else forgetSession(old);
  }

  function cancel() {
    // Nothing to resume after it (a misclick beside Pause would cost the whole upload): asked first, unless the
    // storage service never answered (nothing sent)
    if (state !== "stalled" && !window.confirm(CANCEL_ASK)) return;
    const current = uploader || paused;
    uploader = paused = null;
    stopTransfers(current);
    forgetSession(current); // nothing to resume: the next upload starts afresh
    cancelled.add(current);
    unlockVideo();
    files = null;
    $("form").reset();
    $("progress").hidden = true;
    buttons("idle");
    if ($("error").textContent === SILENT_START) fail(""); // over with it
    say(t("cancelled"));
  }

  async function finished(fileId) {
    unlockVideo();
    fail(""); // a notice from during the upload (another sign-in, say) is over: it is done
    $("progress").hidden = true;
    buttons("idle");
    $("form").reset();
    files = null;
    say(t("complete"));
    $("result").hidden = false;
    $("file-id").textContent = fileId;
    $("processing").textContent = t("waitingForVod");
    $("processing-row").hidden = !config.statusUrl; // UPLOAD_PAGE_STATUS_URL=none: nothing is followed
    delete $("processing").dataset.status;
    $("tasks").replaceChildren();
    // The app's page may want it at once (to attach it to a post). The token is still the uploader's: another
    // user's is refused during an upload.
    tellParent({ type: "vod-upload-done", fileId, user: tokenSubject(token) });
    if (config.statusUrl) await follow(fileId);
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // Follows the upload through the uploads function until its task flow ends (?wait long-polls).
  // `posted`: followed again for a token the app posted; refused at once, the next it posts does not follow it again.
  async function follow(fileId, posted = false) {
    const mine = ++following;
    let answered = false; // the status service has answered this token (it is not one refused at once)
    const url = `${config.statusUrl.replace(/\/$/, "")}/${encodeURIComponent(fileId)}`;
    let etag = null;
    let shown = null; // the last answer: shown again when a 304 follows an outage's message
    let failures = 0;
    for (let attempt = 0; attempt < 720 && mine === following; attempt += 1) {
      const asked = Date.now();
      let response;
      let upload = null;
      try {
        // First ask at once; then long-poll for a change of what was seen (?wait with If-None-Match).
        response = await api(etag ? `${url}?wait=20` : url, { headers: etag ? { "If-None-Match": etag } : {} });
        answered = true;
        // Not the service's answer (a captive portal's page, a proxy's): as a service unavailable, asked again
        if (response.ok) upload = await response.json().catch(() => null);
        if (!upload || typeof upload !== "object" || !Array.isArray(upload.tasks)) upload = null;
      } catch (error) {
        if (mine !== following) return;
        if (error.status !== 0) {
          $("processing").textContent = error.message; // e.g. the token was refused: nothing to retry now
          if (error.signIn) {
            refusedWhileFollowing = fileId;
            followOnPost = answered || !posted;
            // (a frame gets no link: its app's next token, refused at once too, was the last it could send)
            if (!followOnPost) $("processing").textContent += t("noLongerFollowed");
          }
          return;
        }
        failures += 1;
        $("processing").textContent = t("statusUnreachable");
        await sleep(Math.min(30000, 1000 * 2 ** failures));
        continue;
      }
      if (mine !== following) return;
      if (!upload && response.status !== 304) {
        // 404: the event announcing the upload is still on its way to the callback (or never comes: a
        // callback not set up). Either way, and for a service down or throttling, ask ever more slowly.
        failures += 1;
        if (response.status !== 404) {
          $("processing").textContent = t("statusUnavailable", { status: response.status });
        }
        const after = Number(response.headers.get("Retry-After")); // seconds, when the service says
        const wait = Math.min(30000, 1000 * 2 ** failures);
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(300000, Math.max(wait, after * 1000)) : wait);
        continue;
      }
      failures = 0;
      if (upload) {
        etag = response.headers.get("ETag");
        if (!toldStatus || toldStatus.fileId !== fileId || toldStatus.status !== upload.status) {
          toldStatus = { fileId, status: upload.status };
          tellParent({ type: "vod-upload-status", fileId, user: tokenSubject(token), status: upload.status });
        }
        shown = upload;
        showUpload(upload);
        if (FINAL.has(upload.status)) return;
      } else if (shown) {
        showUpload(shown); // a 304 after an outage's message
      }
      // Never a tight loop: an answer that came back at once (no ETag yet, no long-poll) waits a little.
      if (Date.now() - asked < 1000) await sleep(2000);
    }
    if (mine === following) $("processing").textContent += t("noLongerFollowed");
  }

  // A status in words ("status.uploaded": no task flow, or one whose progress VOD was asked not to report), or as
  // the service wrote it when the page has none for it.
  const inWords = (kind, status) =>
    Object.prototype.hasOwnProperty.call(config.messages, `${kind}.${status}`) ? t(`${kind}.${status}`) : status;

  function showUpload(upload) {
    const word = inWords("status", upload.status);
    $("processing").textContent = word;
    $("processing").dataset.status = upload.status;
    const list = $("tasks");
    list.replaceChildren(
      ...upload.tasks.map((task) => {
        const item = document.createElement("li");
        const detail = task.status === "failed" && task.message ? ` — ${task.message}` : "";
        item.textContent = `${task.taskId}: ${inWords("task", task.status)}${detail}`;
        return item;
      }),
    );
    if (FINAL.has(upload.status)) say(t("done", { status: word }));
  }

  // --- wiring ---------------------------------------------------------------------------------------
  $("form").addEventListener("submit", (event) => {
    event.preventDefault();
    const video = $("video").files[0];
    if (!video) {
      fail(t("chooseVideo"));
      $("video").focus();
      return;
    }
    if (!token) {
      fail(SIGNED_OUT);
      return;
    }
    const cover = $("cover").files[0] || null;
    // What VOD would refuse on every try (the SDK takes the type from the name): said now, nothing sent.
    for (const [file, input] of [[video, "video"], [cover, "cover"]]) {
      if (!file) continue;
      const dot = file.name.lastIndexOf(".");
      const named = { name: file.name, example: input === "video" ? "clip.mp4" : "cover.jpg" };
      let why = "";
      if (file.size === 0) why = t(file === video ? "emptyVideo" : "emptyCover", named);
      else if (dot < 0 || dot === file.name.length - 1) why = t("noExtension", named);
      // "clip.mp4 " (a space is a legal last character on most systems): no type VOD knows
      else if (!/^[A-Za-z0-9]+$/.test(file.name.slice(dot + 1))) why = t("badExtension", named);
      if (why) {
        fail(why);
        $(input).focus();
        return;
      }
    }
    const pending = uncommitted;
    uncommitted = null;
    if (pending && files && video === files.video && cover === files.cover) {
      commitAgain(pending); // the same files, all in COS already: only their Commit is left
      return;
    }
    files = { video, cover };
    $("result").hidden = true;
    following += 1; // the previous upload's status is no longer shown: stop following it (nor resume it)
    refusedWhileFollowing = null;
    start();
  });
  $("pause").addEventListener("click", pause);
  $("resume").addEventListener("click", () => {
    say(t("resuming"));
    start();
  });
  $("cancel").addEventListener("click", cancel);
  window.addEventListener("online", () => {
    if (retry !== "offline" || state !== "idle" || !files) return;
    const pending = uncommitted;
    uncommitted = null;
    if (pending) return commitAgain(pending); // all in COS: only its Commit is left
    say(t("backOnline"));
    start(true);
  });
  // Another file chosen: the user's next Upload sends it; the one that failed no longer goes on by itself.
  for (const input of ["video", "cover"]) {
    $(input).addEventListener("change", () => {
      retry = null;
      tellBusy();
    });
  }
  // Leaving (a reload, a link, closing the tab) stops an unfinished upload: a new page resumes it only once the same
  // file is chosen again, and an upload waiting for its Commit or for the connection no longer goes on by itself.
  // So the browser asks first (its own words: a page cannot choose them).
  window.addEventListener("beforeunload", (event) => {
    if (!unfinished()) return;
    event.preventDefault();
    event.returnValue = ""; // what Chrome before 119 and Safari look for
  });

  tokenFromLink();
  showUser();
  if (!token && !config.tokenOrigins.length) $("signed-out").hidden = false;
  buttons("idle");
  tellParent({ type: "vod-upload-ready" });
})();
