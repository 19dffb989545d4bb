// A tiny headless "browser" for sign-in flows, on top of undici's fetch: a cookie jar,
// redirects followed by hand (bounded, every hop recorded), HTML forms read with parse5
// (a spec-compliant HTML parser) and submitted like a browser submits them. No
// JavaScript. It accepts any TLS certificate (the gateway's is self-signed).
//
//   const b = new Browser();
//   let page = await b.get(authorizeUrl, { stopAt: 'http://127.0.0.1:5555/callback' });
//   page = await b.submit(page.form({ field: 'password' }), { fields: { email, password } });
//   page = await b.submit(page.form({ action: /\/consent$/ }), { button: 'allow' });
//   page.callback   // { code, state, iss, error, error_description, params, url } at the redirect_uri
//   page.hops       // [{ method, url, status, location, setCookie, cookie }] of this navigation
//
// Cookies follow RFC 6265 as browsers do: scoped to the host (not the port: two servers on
// 127.0.0.1 share cookies, as in a real browser; new Browser({ perOrigin: true }) keeps
// them apart), Domain (ignored unless it matches; host-only on IP addresses), Path
// (default path of the request URL; path-match on send), Secure (set and sent only over
// https), Max-Age / Expires (a past date or Max-Age <= 0 deletes). HttpOnly and SameSite
// are recorded but do not matter to a single-user agent without scripts.
// Requests carry Accept, User-Agent, Cookie, and like a browser on form posts Origin
// (the form page's origin; "null" after a cross-origin 307/308) and Referer
// (strict-origin-when-cross-origin). Sec-Fetch-* headers are not sent.
import { parse } from 'parse5';
import { Agent, fetch as undiciFetch } from 'undici';

// ---------------------------------------------------------------------------
// TLS: a fetch that accepts self-signed certificates (for the SDK's transports too)

let insecureAgent;
/** fetch(url, init) through an undici Agent that does not verify TLS certificates. */
export function insecureFetch(url, init = {}) {
  insecureAgent ??= new Agent({ connect: { rejectUnauthorized: false } });
  return undiciFetch(url, { ...init, dispatcher: insecureAgent });
}

// ---------------------------------------------------------------------------
// Cookies

const IP_RE = /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-f:.]+\])$/i;

function defaultPath(url) {
  const p = url.pathname;
  if (!p.startsWith('/') || p.lastIndexOf('/') === 0) return '/';
  return p.slice(0, p.lastIndexOf('/'));
}
function pathMatch(reqPath, cookiePath) {
  if (reqPath === cookiePath) return true;
  if (!reqPath.startsWith(cookiePath)) return false;
  return cookiePath.endsWith('/') || reqPath[cookiePath.length] === '/';
}
function domainMatch(host, domain) {
  if (host === domain) return true;
  return !IP_RE.test(host) && host.endsWith(`.${domain}`);
}

export class CookieJar {
  constructor({ perOrigin = false } = {}) {
    this.perOrigin = perOrigin;
    this.cookies = [];
    this.seq = 0;
  }

  #scope(url) { return this.perOrigin ? url.origin : ''; }

  /** Stores one Set-Cookie header value received from url. Returns the cookie or null if refused. */
  store(url, header, now = Date.now()) {
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    const parts = header.split(';');
    const nv = parts.shift();
    const eq = nv.indexOf('=');
    if (eq < 0) return null;
    const name = nv.slice(0, eq).trim();
    const value = nv.slice(eq + 1).trim();
    if (!name) return null;
    const c = {
      name, value, domain: host, hostOnly: true, path: defaultPath(u), secure: false, httpOnly: false,
      sameSite: null, expiresAt: null, scope: this.#scope(u), seq: this.seq++,
    };
    let maxAge = null;
    let expires = null;
    for (const attr of parts) {
      const i = attr.indexOf('=');
      const k = (i < 0 ? attr : attr.slice(0, i)).trim().toLowerCase();
      const v = i < 0 ? '' : attr.slice(i + 1).trim();
      if (k === 'max-age') {
        if (/^-?\d+$/.test(v)) maxAge = Number(v);
      } else if (k === 'expires') {
        const t = Date.parse(v);
        if (!Number.isNaN(t)) expires = t;
      } else if (k === 'domain') {
        const d = v.replace(/^\./, '').toLowerCase();
        if (d) {
          if (!domainMatch(host, d)) return null;
          if (d !== host) { c.domain = d; c.hostOnly = false; }
        }
      } else if (k === 'path') {
        if (v.startsWith('/')) c.path = v;
      } else if (k === 'secure') {
        c.secure = true;
      } else if (k === 'httponly') {
        c.httpOnly = true;
      } else if (k === 'samesite') {
        c.sameSite = v;
      }
    }
    if (c.secure && u.protocol !== 'https:') return null;
    if (maxAge !== null) c.expiresAt = maxAge <= 0 ? 0 : now + maxAge * 1000;
    else if (expires !== null) c.expiresAt = expires;
    const same = (x) => x.name === c.name && x.domain === c.domain && x.path === c.path && x.scope === c.scope;
    const old = this.cookies.find(same);
    this.cookies = this.cookies.filter((x) => !same(x));
    if (c.expiresAt !== null && c.expiresAt <= now) return null;
    if (old) c.seq = old.seq;
    this.cookies.push(c);
    return c;
  }

  /** Cookies that a request to url carries, in the order a browser sends them. */
  matching(url, now = Date.now()) {
    const u = new URL(url);
    const host = u.hostname.toLowerCase();
    this.cookies = this.cookies.filter((c) => c.expiresAt === null || c.expiresAt > now);
    return this.cookies
      .filter((c) => c.scope === this.#scope(u))
      .filter((c) => (c.hostOnly ? c.domain === host : domainMatch(host, c.domain)))
      .filter((c) => pathMatch(u.pathname || '/', c.path))
      .filter((c) => !c.secure || u.protocol === 'https:')
      .sort((a, b) => b.path.length - a.path.length || a.seq - b.seq);
  }

  /** The Cookie header for a request to url, or null. */
  header(url) {
    const list = this.matching(url);
    return list.length ? list.map((c) => `${c.name}=${c.value}`).join('; ') : null;
  }

  /** The cookie named name that a request to url would carry (or undefined). */
  get(url, name) {
    return this.matching(url).find((c) => c.name === name);
  }

  /** Every stored, unexpired cookie. */
  all(now = Date.now()) {
    return this.cookies.filter((c) => c.expiresAt === null || c.expiresAt > now);
  }

  clear() { this.cookies = []; }
}

// ---------------------------------------------------------------------------
// HTML (parse5 tree helpers)

function attr(el, name) {
  return el.attrs?.find((a) => a.name === name)?.value;
}
function hasAttr(el, name) {
  return !!el.attrs?.some((a) => a.name === name);
}
function* walk(node) {
  for (const child of node.childNodes ?? []) {
    yield child;
    yield* walk(child);
  }
  if (node.content) yield* walk(node.content);
}
function textContent(node) {
  if (node.nodeName === '#text') return node.value;
  return (node.childNodes ?? []).map(textContent).join('');
}
function norm(s) {
  return String(s ?? '').replace(/\s+/g, ' ').trim();
}

const BUTTON_INPUT_TYPES = new Set(['submit', 'image', 'button', 'reset']);

/** One HTML form as a browser would submit it. */
export class Form {
  constructor(el, pageUrl, controls, index) {
    this.pageUrl = pageUrl;
    this.index = index;
    this.id = attr(el, 'id') ?? null;
    this.name = attr(el, 'name') ?? null;
    const rawAction = attr(el, 'action');
    this.action = new URL(rawAction ? rawAction : pageUrl, pageUrl).href;
    this.method = (attr(el, 'method') ?? 'get').toUpperCase() === 'POST' ? 'POST' : 'GET';
    this.enctype = attr(el, 'enctype') ?? 'application/x-www-form-urlencoded';
    /** Every control: { tag, name, type, value, checked, disabled }. */
    this.inputs = [];
    /** Submit buttons: { name, value, text, id, formaction, formmethod }. */
    this.buttons = [];
    /** What submitting sends before a button is chosen: [[name, value], ...]. */
    this.fields = [];
    for (const c of controls) this.#add(c);
  }

  #add(el) {
    const tag = el.nodeName;
    const name = attr(el, 'name') ?? '';
    const disabled = hasAttr(el, 'disabled');
    if (tag === 'button' || (tag === 'input' && BUTTON_INPUT_TYPES.has((attr(el, 'type') ?? '').toLowerCase()))) {
      const type = (attr(el, 'type') ?? (tag === 'button' ? 'submit' : '')).toLowerCase();
      this.inputs.push({ tag, name, type, value: attr(el, 'value') ?? '', disabled });
      if ((type === 'submit' || type === 'image') && !disabled) {
        this.buttons.push({
          name, value: attr(el, 'value') ?? '', id: attr(el, 'id') ?? null,
          text: norm(tag === 'button' ? textContent(el) : attr(el, 'value') ?? ''),
          formaction: attr(el, 'formaction') ? new URL(attr(el, 'formaction'), this.pageUrl).href : null,
          formmethod: attr(el, 'formmethod')?.toUpperCase() ?? null,
        });
      }
      return;
    }
    if (tag === 'input') {
      const type = (attr(el, 'type') ?? 'text').toLowerCase();
      const checked = hasAttr(el, 'checked');
      const value = attr(el, 'value') ?? (type === 'checkbox' || type === 'radio' ? 'on' : '');
      this.inputs.push({ tag, name, type, value, checked, disabled });
      if (!name || disabled || type === 'file') return;
      if ((type === 'checkbox' || type === 'radio') && !checked) return;
      this.fields.push([name, value]);
    } else if (tag === 'textarea') {
      const value = textContent(el); // parse5 already drops the newline after <textarea>
      this.inputs.push({ tag, name, type: 'textarea', value, disabled });
      if (name && !disabled) this.fields.push([name, value]);
    } else if (tag === 'select') {
      const options = [...walk(el)].filter((n) => n.nodeName === 'option');
      const valueOf = (o) => attr(o, 'value') ?? norm(textContent(o));
      let chosen = options.filter((o) => hasAttr(o, 'selected'));
      if (!hasAttr(el, 'multiple')) chosen = chosen.length ? [chosen[chosen.length - 1]] : options.slice(0, 1);
      this.inputs.push({ tag, name, type: 'select', value: chosen.map(valueOf)[0] ?? '', options: options.map(valueOf), disabled });
      if (name && !disabled) for (const o of chosen) this.fields.push([name, valueOf(o)]);
    }
  }

  /** True if the form has a control (field or button) with this name. */
  has(name) {
    return this.inputs.some((i) => i.name === name);
  }

  /** The value a field would send (first one), or undefined. */
  get(name) {
    return this.fields.find(([n]) => n === name)?.[1];
  }

  /** Which submit button `spec` means: a string (value, then id, text or name) or {name, value}. */
  button(spec) {
    const list = this.buttons;
    let hits;
    if (spec && typeof spec === 'object') {
      hits = list.filter((b) => (spec.name === undefined || b.name === spec.name)
        && (spec.value === undefined || b.value === spec.value));
    } else {
      for (const key of ['value', 'id', 'text', 'name']) {
        hits = list.filter((b) => b[key] === spec);
        if (hits.length) break;
      }
    }
    if (hits.length !== 1) {
      throw new Error(`form ${this.describe()}: ${hits.length ? 'several' : 'no'} submit button(s) match `
        + `${JSON.stringify(spec)}; buttons: ${JSON.stringify(list.map(({ name, value, text }) => ({ name, value, text })))}`);
    }
    return hits[0];
  }

  describe() {
    return `#${this.index}${this.id ? ` id=${this.id}` : ''} ${this.method} ${this.action} `
      + `fields=[${this.inputs.map((i) => i.name).filter(Boolean).join(',')}]`;
  }
}

function formsOf(doc, pageUrl) {
  const forms = [];
  const byId = new Map();
  const controls = new Map();
  const visit = (node, owner) => {
    for (const child of node.childNodes ?? []) {
      let cur = owner;
      if (child.nodeName === 'form') {
        // A form inside a form is ignored by the HTML parser already; this is its tree.
        cur = child;
        forms.push(child);
        controls.set(child, []);
        if (attr(child, 'id')) byId.set(attr(child, 'id'), child);
      } else if (['input', 'button', 'select', 'textarea'].includes(child.nodeName)) {
        const ref = attr(child, 'form');
        const target = ref !== undefined ? { ref } : cur;
        if (target) (controls.get(target) ?? controls.set(target, []).get(target)).push(child);
        continue; // a select's options are read by Form
      }
      visit(child, cur);
    }
  };
  visit(doc, null);
  // Controls with form="id" go to that form (in document order among the others).
  const order = new Map([...walk(doc)].map((n, i) => [n, i]));
  for (const [key, list] of controls) {
    if (key?.ref === undefined) continue;
    const f = byId.get(key.ref);
    if (f) controls.get(f).push(...list);
  }
  return forms.map((f, i) => new Form(f, pageUrl,
    controls.get(f).sort((a, b) => order.get(a) - order.get(b)), i));
}

// ---------------------------------------------------------------------------
// Pages

/** The result of a navigation: a fetched document, or a stop at a redirect_uri. */
export class Page {
  constructor({ url, status, headers, text, hops, callback = null }) {
    this.url = url;
    this.status = status;
    this.headers = headers;
    this.text = text;
    this.hops = hops;
    /** Set when the navigation stopped at a stopAt URL: the query the client would get. */
    this.callback = callback;
    this.stopped = !!callback;
  }

  get doc() {
    this._doc ??= parse(this.text ?? '');
    return this._doc;
  }

  get title() {
    const t = [...walk(this.doc)].find((n) => n.nodeName === 'title');
    return t ? norm(textContent(t)) : '';
  }

  /** Visible-ish text of the body (tags stripped, whitespace collapsed). */
  get bodyText() {
    const body = [...walk(this.doc)].find((n) => n.nodeName === 'body');
    const strip = (n) => (['script', 'style', 'template'].includes(n.nodeName) ? ''
      : n.nodeName === '#text' ? n.value : (n.childNodes ?? []).map(strip).join(' '));
    return norm(body ? strip(body) : '');
  }

  /** Text of the first element with this id, or undefined. */
  textById(id) {
    const el = [...walk(this.doc)].find((n) => attr(n, 'id') === id);
    return el ? norm(textContent(el)) : undefined;
  }

  /** Every form on the page. */
  forms() {
    this._forms ??= formsOf(this.doc, this.url);
    return this._forms;
  }

  /**
   * The one form matching q: { action: path | URL | RegExp, field: control name, id,
   * button: value of a submit button }. Throws, listing the forms, unless exactly one matches.
   */
  form(q = {}) {
    const hits = this.forms().filter((f) => formMatches(f, q));
    if (hits.length !== 1) {
      throw new Error(`${hits.length ? 'several forms' : 'no form'} match ${JSON.stringify(q, replacer)} on ${this.url} `
        + `(HTTP ${this.status}); forms: ${this.forms().map((f) => f.describe()).join(' | ') || 'none'}; `
        + `text: ${this.bodyText.slice(0, 300)}`);
    }
    return hits[0];
  }

  /** True if some form matches q (see form()). */
  hasForm(q = {}) {
    return this.forms().some((f) => formMatches(f, q));
  }

  /** Links: [{ href (absolute), text }]. */
  links() {
    return [...walk(this.doc)].filter((n) => n.nodeName === 'a' && attr(n, 'href') !== undefined)
      .map((a) => ({ href: new URL(attr(a, 'href'), this.url).href, text: norm(textContent(a)) }));
  }

  json() { return JSON.parse(this.text); }
}

function replacer(k, v) { return v instanceof RegExp ? String(v) : v; }

function formMatches(f, q) {
  if (q.id !== undefined && f.id !== q.id) return false;
  if (q.field !== undefined && !f.has(q.field)) return false;
  if (q.button !== undefined && !f.buttons.some((b) => b.value === q.button || b.name === q.button)) return false;
  if (q.action !== undefined) {
    const a = new URL(f.action);
    const bare = `${a.origin}${a.pathname}`;
    if (q.action instanceof RegExp) return q.action.test(f.action);
    return [f.action, bare, a.pathname].includes(String(q.action));
  }
  return true;
}

// ---------------------------------------------------------------------------
// The browser

function stopMatcher(spec) {
  const list = (Array.isArray(spec) ? spec : [spec]).filter((s) => s !== undefined && s !== null);
  const tests = list.map((s) => {
    if (typeof s === 'function') return s;
    if (s instanceof RegExp) return (u) => s.test(u.href);
    const t = new URL(String(s));
    return (u) => u.origin === t.origin && u.pathname === t.pathname;
  });
  return (u) => tests.some((f) => f(u));
}

function callbackOf(u) {
  const params = Object.fromEntries(u.searchParams);
  const fragment = u.hash.length > 1 ? Object.fromEntries(new URLSearchParams(u.hash.slice(1))) : {};
  const p = { ...fragment, ...params };
  return {
    url: u.href, params, fragment,
    code: p.code, state: p.state, iss: p.iss, error: p.error, error_description: p.error_description,
  };
}

function refererFor(from, to) {
  if (!from) return null;
  const f = new URL(from);
  const t = new URL(to);
  if (f.protocol === 'https:' && t.protocol !== 'https:') return null;
  if (f.origin === t.origin) { f.hash = ''; return f.href; }
  return `${f.origin}/`;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

export class Browser {
  /**
   * options: stopAt (default redirect_uri(s) to stop at; see get()), maxRedirects (20),
   * timeoutMs per request (10000), perOrigin (cookies per origin instead of per host),
   * userAgent, headers (sent on every request).
   */
  constructor({ stopAt, maxRedirects = 20, timeoutMs = 10_000, perOrigin = false, userAgent, headers = {} } = {}) {
    this.stopAt = stopAt;
    this.maxRedirects = maxRedirects;
    this.timeoutMs = timeoutMs;
    this.cookies = new CookieJar({ perOrigin });
    this.userAgent = userAgent ?? 'Mozilla/5.0 (mcpgate-e2e form driver)';
    this.extraHeaders = headers;
    /** Every request made, in order: { method, url, status, location, setCookie, cookie }. */
    this.history = [];
    this.agent = new Agent({ connect: { rejectUnauthorized: false } });
  }

  /** GET url as if typed in the address bar. opts: stopAt, headers. */
  get(url, opts = {}) {
    return this.navigate('GET', url, opts);
  }

  /** POSTs urlencoded data to url (a form post without a form). opts as in get(), plus referrer. */
  post(url, data, opts = {}) {
    const body = new URLSearchParams(data).toString();
    return this.navigate('POST', url, { ...opts, body, referrer: opts.referrer ?? null });
  }

  /**
   * Submits a form like a browser: its successful controls (hidden inputs included), with
   * fields {name: value | [values]} replacing the values of existing controls (an unknown
   * name throws), omit [names] left out, extra {name: value} appended as they are (for
   * tampering), and the submit button `button` (a value, id, text or name, or {name,
   * value}; default the first submit button, as pressing Enter does; null for none).
   * opts: stopAt, headers.
   */
  async submit(form, { fields = {}, omit = [], extra = {}, button, stopAt, headers } = {}) {
    if (!(form instanceof Form)) throw new Error('submit() needs a Form from page.form()');
    let data = form.fields.map(([n, v]) => [n, v]);
    for (const [name, value] of Object.entries(fields)) {
      if (!form.inputs.some((i) => i.name === name && i.type !== 'submit' && i.type !== 'image')) {
        throw new Error(`form ${form.describe()} has no field ${name} (use extra to add one)`);
      }
      const values = Array.isArray(value) ? value : [value];
      const first = data.findIndex(([n]) => n === name);
      data = data.filter(([n]) => n !== name);
      data.splice(first < 0 ? data.length : first, 0, ...values.map((v) => [name, String(v)]));
    }
    data = data.filter(([n]) => !omit.includes(n));
    for (const [name, value] of Object.entries(extra)) {
      for (const v of Array.isArray(value) ? value : [value]) data.push([name, String(v)]);
    }
    let action = form.action;
    let method = form.method;
    if (button !== null) {
      const b = button === undefined ? form.buttons[0] : form.button(button);
      if (b) {
        if (b.name) data.push([b.name, b.value]);
        if (b.formaction) action = b.formaction;
        if (b.formmethod) method = b.formmethod === 'POST' ? 'POST' : 'GET';
      }
    }
    if (method === 'POST' && form.enctype !== 'application/x-www-form-urlencoded') {
      throw new Error(`form ${form.describe()}: enctype ${form.enctype} is not supported`);
    }
    const encoded = new URLSearchParams(data).toString();
    if (method === 'GET') {
      const u = new URL(action);
      u.search = encoded;
      u.hash = '';
      return this.navigate('GET', u.href, { stopAt, headers, referrer: form.pageUrl });
    }
    return this.navigate('POST', action, {
      body: encoded, stopAt, headers, referrer: form.pageUrl, origin: new URL(form.pageUrl).origin,
    });
  }

  /**
   * One navigation: the request, then each redirect (bounded by maxRedirects), until a
   * response that is not a redirect, or a URL matching stopAt (string: same origin and
   * path; RegExp on the href; predicate on the URL), which is not requested: the Page
   * then has callback = { code, state, iss, error, error_description, params, url }.
   */
  async navigate(method, url, { body, stopAt = this.stopAt, headers = {}, referrer = null, origin } = {}) {
    const stop = stopMatcher(stopAt);
    const hops = [];
    let cur = new URL(url);
    let originHeader = method === 'POST' ? (origin ?? 'null') : null;
    for (let n = 0; ; n++) {
      if (stop(cur)) {
        return new Page({ url: cur.href, status: null, headers: null, text: null, hops, callback: callbackOf(cur) });
      }
      if (n > this.maxRedirects) {
        throw new Error(`more than ${this.maxRedirects} redirects; hops:\n${hops.map((h) => `${h.status} ${h.method} ${h.url} -> ${h.location}`).join('\n')}`);
      }
      const h = {
        accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8',
        'accept-language': 'en',
        'user-agent': this.userAgent,
        ...this.extraHeaders,
        ...headers,
      };
      const cookie = this.cookies.header(cur);
      if (cookie) h.cookie = cookie;
      const ref = refererFor(referrer, cur);
      if (ref) h.referer = ref;
      if (method === 'POST') {
        h.origin = originHeader;
        h['content-type'] = 'application/x-www-form-urlencoded';
      }
      let res;
      try {
        res = await undiciFetch(cur, {
          method, headers: h, body: method === 'POST' ? body ?? '' : undefined, redirect: 'manual',
          dispatcher: this.agent, signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (e) {
        throw new Error(`${method} ${cur.href}: ${e.cause?.code ?? e.cause?.message ?? e.message}`);
      }
      const setCookie = res.headers.getSetCookie();
      for (const sc of setCookie) this.cookies.store(cur, sc);
      const loc = res.headers.get('location');
      const location = loc !== null ? new URL(loc, cur).href : null;
      const hop = { method, url: cur.href, status: res.status, location, setCookie, cookie: cookie ?? null };
      hops.push(hop);
      this.history.push(hop);
      if (REDIRECTS.has(res.status) && location !== null) {
        await res.arrayBuffer().catch(() => {});
        const next = new URL(location);
        if (res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST')) {
          method = 'GET';
          body = undefined;
        } else if (method === 'POST' && next.origin !== cur.origin) {
          originHeader = 'null';
        }
        cur = next;
        continue;
      }
      const text = await res.text();
      return new Page({ url: cur.href, status: res.status, headers: res.headers, text, hops });
    }
  }

  /** Closes the connection pool. */
  async close() {
    await this.agent.close().catch(() => {});
  }
}

// ---------------------------------------------------------------------------
// Sign-in with any form-based login + consent (the gateway's pages, the test IdP's)

/**
 * Opens url and walks sign-in pages until the browser is sent to stopAt, at most maxSteps
 * form submissions. On each page, in this order:
 *   - provider given and a form with a `provider` control: picks that provider
 *     (a submit button with that value, or the field set to it);
 *   - a form with a `password` field: fills `email` (or `login`/`username`) and `password`;
 *   - a form with a `decision` button: presses decision (default 'allow').
 * Returns the final Page (page.callback has the code); throws with the page's text when
 * a page has none of these forms.
 */
export async function signIn(browser, url, { stopAt, email, password, decision = 'allow', provider, maxSteps = 8 } = {}) {
  let page = await browser.get(url, { stopAt });
  let passwordSent = false;
  for (let step = 0; step < maxSteps && !page.stopped; step++) {
    if (provider !== undefined && page.hasForm({ field: 'provider' })) {
      const f = page.forms().find((x) => x.has('provider') && x.buttons.some((b) => b.name === 'provider' && b.value === provider))
        ?? page.form({ field: 'provider' });
      const viaButton = f.buttons.some((b) => b.name === 'provider' && b.value === provider);
      page = await browser.submit(f, viaButton
        ? { button: { name: 'provider', value: provider }, stopAt }
        : { fields: { provider }, stopAt });
    } else if (page.hasForm({ field: 'password' })) {
      if (passwordSent) {
        throw new Error(`signIn: the password was refused at ${page.url} (HTTP ${page.status}): ${page.bodyText.slice(0, 400)}`);
      }
      passwordSent = true;
      const f = page.form({ field: 'password' });
      const user = ['email', 'login', 'username'].find((n) => f.has(n));
      const fields = { password };
      if (user) fields[user] = email;
      const b = f.buttons.find((x) => ['login', 'signin', 'sign-in'].includes(x.value) || /sign ?in|log ?in/i.test(x.text));
      page = await browser.submit(f, { fields, button: b ? { name: b.name, value: b.value } : undefined, stopAt });
    } else if (page.hasForm({ button: 'decision' })) {
      page = await browser.submit(page.form({ button: 'decision' }), { button: { name: 'decision', value: decision }, stopAt });
    } else {
      throw new Error(`signIn: no sign-in, provider or consent form at ${page.url} (HTTP ${page.status}): ${page.bodyText.slice(0, 400)}`);
    }
  }
  if (!page.stopped) {
    throw new Error(`signIn: not redirected to ${stopAt} after ${maxSteps} steps; at ${page.url} (HTTP ${page.status}): ${page.bodyText.slice(0, 400)}`);
  }
  return page;
}
