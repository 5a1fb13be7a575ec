// The demo app's browser-era face: the address book as a legacy portal serves it, pages
// rendered on the server. A paged HTML list with a link per contact, a contact page, a CSV
// export, a SOAP-style XML lookup, and an AJAX page that loads rows with XMLHttpRequest (and
// includes sluice's challenge script, as docs/challenge.md tells a legacy page to). This is
// what `wget --mirror`, httrack and a clerk's browser meet in the tests.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Contact } from './legacy-app.js'

export const PORTAL_PAGE_SIZE = 20

export interface PortalContext {
  contacts: readonly Contact[]
  lookup(id: number): Contact | undefined
  /** The logged-in user, or undefined. */
  user(req: IncomingMessage): string | undefined
  laxInt(text: string | number | undefined, what: string): number
}

const esc = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string)

function page(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)} — Acme Post</title>${head}
<style>body{font:14px/1.4 Verdana,sans-serif;margin:1em 2em}table.results{border-collapse:collapse}table.results td,table.results th{border:1px solid #999;padding:2px 6px}</style>
</head><body>
<div id="header"><b>Acme Post</b> · <a href="/addressbook/list.do">Address book</a> · <a href="/addressbook/ajax.html">Quick view</a></div>
<h1>${esc(title)}</h1>
${body}
</body></html>
`
}

function rows(list: readonly Contact[]): string {
  return list
    .map(
      (c) =>
        `<tr data-id="${c.id}"><td><a href="/addressbook/view.do?id=${c.id}">${esc(c.name)}</a></td><td>${esc(c.city)}</td><td>${esc(c.postcode)}</td></tr>`,
    )
    .join('\n')
}

function pageOf(ctx: PortalContext, n: number): Contact[] {
  const start = (n - 1) * PORTAL_PAGE_SIZE
  return ctx.contacts.slice(Math.max(0, start), start + PORTAL_PAGE_SIZE) as Contact[]
}

function html(res: ServerResponse, status: number, text: string, type = 'text/html; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(text)) })
  res.end(text)
}

const AJAX_PAGE = page(
  'Quick view',
  `<p>Rows load as you page, without reloading.</p>
<table class="results"><thead><tr><th>Name</th><th>City</th><th>Postcode</th></tr></thead><tbody id="rows"></tbody></table>
<p><button id="more" type="button">More</button> <span id="status"></span></p>
<script>
var next = 1;
function more() {
  var xhr = new XMLHttpRequest();
  xhr.open('GET', '/addressbook/rows.do?page=' + next);
  xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
  xhr.onreadystatechange = function () {
    if (xhr.readyState !== 4) return;
    if (xhr.status !== 200) { document.getElementById('status').textContent = 'Error ' + xhr.status; return; }
    document.getElementById('rows').insertAdjacentHTML('beforeend', xhr.responseText);
    document.getElementById('status').textContent = 'Page ' + next + ' loaded';
    next++;
  };
  xhr.send();
}
document.getElementById('more').onclick = more;
more();
</script>`,
  // As docs/challenge.md asks of a legacy AJAX page: sluice's script first.
  '<script src="/__sluice/challenge.js"></script>',
)

/** Handles the portal's paths; false for any other. */
export function portal(
  ctx: PortalContext,
  path: string,
  method: string,
  query: Map<string, string[]>,
  body: string,
  req: IncomingMessage,
  res: ServerResponse,
): boolean {
  const isGet = method === 'GET' || method === 'HEAD'
  // Paths arrive lower-cased (the app matches them in any case, as IIS does).
  if (!path.startsWith('/addressbook/') && path !== '/ws/addressservice') return false
  if (ctx.user(req) === undefined) {
    if (path.startsWith('/ws/')) {
      html(res, 401, soapFault('authentication required'), 'text/xml; charset=utf-8')
      return true
    }
    res.writeHead(303, { location: '/', 'content-length': '0' }).end()
    return true
  }
  const number = (name: string, fallback: string) => ctx.laxInt(query.get(name)?.[0] ?? fallback, name)
  if (path === '/addressbook/list.do' && isGet) {
    const n = Math.max(1, number('page', '1'))
    const last = Math.ceil(ctx.contacts.length / PORTAL_PAGE_SIZE)
    const pager = [
      n > 1 ? `<a href="/addressbook/list.do?page=${n - 1}">« Previous</a>` : '',
      n < last ? `<a href="/addressbook/list.do?page=${n + 1}">Next »</a>` : '',
      `<a href="/addressbook/export.csv?page=${n}">Export this page (CSV)</a>`,
    ].join(' ')
    html(
      res,
      200,
      page(
        `Address book, page ${n} of ${last}`,
        `<table class="results"><tr><th>Name</th><th>City</th><th>Postcode</th></tr>\n${rows(pageOf(ctx, n))}\n</table>\n<p class="pager">${pager}</p>`,
      ),
    )
    return true
  }
  if (path === '/addressbook/rows.do' && isGet) {
    html(res, 200, rows(pageOf(ctx, Math.max(1, number('page', '1')))))
    return true
  }
  if (path === '/addressbook/view.do' && isGet) {
    const c = ctx.lookup(number('id', '0'))
    if (!c) {
      html(res, 404, page('Not found', '<p>No such contact.</p>'))
      return true
    }
    html(
      res,
      200,
      page(
        c.name,
        `<dl class="contact" data-id="${c.id}"><dt>Name</dt><dd>${esc(c.name)}</dd><dt>Email</dt><dd>${esc(c.email)}</dd><dt>Phone</dt><dd>${esc(c.phone)}</dd><dt>Address</dt><dd>${esc(c.street)}<br>${esc(c.postcode)} ${esc(c.city)}</dd></dl><p><a href="/addressbook/list.do?page=${Math.ceil(c.id / PORTAL_PAGE_SIZE)}">Back to the list</a></p>`,
      ),
    )
    return true
  }
  if (path === '/addressbook/export.csv' && isGet) {
    const list = pageOf(ctx, Math.max(1, number('page', '1')))
    const quote = (s: string) => `"${s.replace(/"/g, '""')}"`
    const csv = ['id,name,email,phone,address']
      .concat(
        list.map((c) =>
          [c.id, quote(c.name), c.email, c.phone, quote(`${c.street}\r\n${c.postcode} ${c.city}`)].join(','),
        ),
      )
      .join('\r\n')
    res.writeHead(200, {
      'content-type': 'text/csv; charset=utf-8',
      'content-disposition': 'attachment; filename="addressbook.csv"',
    })
    res.end(`${csv}\r\n`)
    return true
  }
  if (path === '/addressbook/ajax.html' && isGet) {
    html(res, 200, AJAX_PAGE)
    return true
  }
  if (path === '/ws/addressservice' && method === 'POST') {
    // <lookup><id>1</id><id>2</id></lookup> or <lookup><name>smith</name></lookup>, in a SOAP envelope.
    const ids = [...body.matchAll(/<(?:\w+:)?id>\s*([^<]+?)\s*<\/(?:\w+:)?id>/g)].map((m) => ctx.laxInt(m[1], 'id'))
    const name = /<(?:\w+:)?name>([^<]*)<\/(?:\w+:)?name>/.exec(body)?.[1]?.toLowerCase()
    const found =
      ids.length > 0
        ? ids.map((id) => ctx.lookup(id)).filter((c): c is Contact => c !== undefined)
        : name !== undefined
          ? ctx.contacts.filter((c) => c.name.toLowerCase().includes(name)).slice(0, 50)
          : []
    const entries = found
      .map(
        (c) =>
          `<ns2:entry id="${c.id}"><ns2:name>${esc(c.name)}</ns2:name><ns2:city>${esc(c.city)}</ns2:city></ns2:entry>`,
      )
      .join('')
    html(
      res,
      200,
      `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:ns2="urn:acme:addressbook"><soap:Body><ns2:lookupResponse>${entries}</ns2:lookupResponse></soap:Body></soap:Envelope>`,
      'text/xml; charset=utf-8',
    )
    return true
  }
  html(res, 404, page('Not found', '<p>No such page.</p>'))
  return true
}

function soapFault(message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>${esc(message)}</faultstring></soap:Fault></soap:Body></soap:Envelope>`
}
