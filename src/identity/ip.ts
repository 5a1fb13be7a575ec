// The client address, and the account key when nothing else names an account.
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import proxyaddr from 'proxy-addr'
import ipaddr from 'ipaddr.js'

export type TrustFn = (addr: string, hop: number) => boolean

/** proxy-addr's trust function; also accepts its names: loopback, linklocal, uniquelocal. */
export function compileTrust(trustedProxies: readonly string[]): TrustFn {
  return proxyaddr.compile([...trustedProxies])
}

const kTrust = Symbol('sluice.peerTrust')
type TrustedSocket = Socket & { [kTrust]?: { trust: TrustFn; trusted: boolean } }

/**
 * Is the socket's peer a trusted proxy? Asked several times a request (identity, untrusted
 * headers, X-Forwarded-*) and the answer is the same for the whole connection, while
 * proxy-addr parses the address on every call: it is remembered on the socket, for the trust
 * function it was computed with (a reload may bring another).
 */
export function trustedPeer(socket: Socket, trust: TrustFn): boolean {
  const s = socket as TrustedSocket
  const known = s[kTrust]
  if (known !== undefined && known.trust === trust) return known.trusted
  const addr = socket.remoteAddress
  const trusted = addr !== undefined && trust(addr, 0)
  s[kTrust] = { trust, trusted }
  return trusted
}

/**
 * The client address: the socket peer, or — only when that peer is a trusted proxy — the
 * right-most X-Forwarded-For entry that is not itself trusted (what a spoofer cannot forge).
 */
export function clientAddress(req: IncomingMessage, trust: TrustFn): string {
  // A request whose connection has closed no longer has a socket.
  const peer = req.socket?.remoteAddress
  if (!peer) return '0.0.0.0'
  // An untrusted peer is the client: no need for proxy-addr to parse it (and X-Forwarded-For) again.
  return trustedPeer(req.socket, trust) ? proxyaddr(req, trust) : peer
}

/**
 * IPv6 clients are keyed by their /64: one host commonly holds a whole /64, and keying by
 * address would hand it 2^64 fresh budgets. IPv4-mapped IPv6 is folded to IPv4.
 */
export function ipAccount(address: string): string {
  if (!ipaddr.isValid(address)) return `ip:${address}`
  let ip = ipaddr.parse(address)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
  if (ip.kind() === 'ipv4') return `ip:${ip.toString()}`
  const parts = (ip as ipaddr.IPv6).parts.slice(0, 4)
  return `ip:${parts.map((p) => p.toString(16)).join(':')}::/64`
}

/** Throws a message for trustedProxies entries proxy-addr would not understand. */
export function validateTrustEntry(entry: string): string | null {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return null
  try {
    proxyaddr.compile(entry)
    return null
  } catch (err) {
    return (err as Error).message
  }
}

/**
 * The network a client address belongs to: its /24 (IPv4) or /48 (IPv6) by default, the blocks
 * one operator or customer commonly holds (the config's `network` sets other lengths).
 * IPv4-mapped IPv6 is IPv4. Where per-network limits count, and where the memory store counts
 * identities it has no room to track (store churn).
 */
const DOTTED = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/

/**
 * networkOf's answers by prefix lengths, then by address: every request of a route with
 * per-network limits asks, mostly for addresses it has seen (a client keeps its address, and
 * the connection its socket). Bounded however many addresses come: a table is emptied when it
 * holds NETWORKS_HELD of them, the tables when there are more than LENGTHS_HELD (prefix lengths
 * only come from the config and the overflow default: two), and an address longer than any
 * IP's text (an untrusted proxy's X-Forwarded-For can be anything) is never kept.
 */
const networks = new Map<number, Map<string, string>>()
export const NETWORKS_HELD = 4096
const LENGTHS_HELD = 4
const LONGEST_ADDRESS = 64

export function networkOf(address: string, ipv4 = 24, ipv6 = 48): string {
  const lengths = ipv4 * 1024 + ipv6
  let held = networks.get(lengths)
  if (held === undefined) {
    if (networks.size >= LENGTHS_HELD) networks.clear()
    networks.set(lengths, (held = new Map()))
  }
  let network = held.get(address)
  if (network === undefined) {
    network = computeNetwork(address, ipv4, ipv6)
    if (address.length <= LONGEST_ADDRESS) {
      if (held.size >= NETWORKS_HELD) held.clear()
      held.set(address, network)
    }
  }
  return network
}

/** How many addresses networkOf holds answers for (tests: it stays bounded). */
export function networksHeld(): number {
  let n = 0
  for (const held of networks.values()) n += held.size
  return n
}

function computeNetwork(address: string, ipv4: number, ipv6: number): string {
  // The common case, a plain dotted IPv4 address in a /24, without parsing (every request of a
  // route with per-network limits asks).
  if (ipv4 === 24 && DOTTED.test(address)) return `${address.slice(0, address.lastIndexOf('.'))}.0/24`
  if (!ipaddr.isValid(address)) return address
  let ip = ipaddr.parse(address)
  if (ip.kind() === 'ipv6' && (ip as ipaddr.IPv6).isIPv4MappedAddress()) ip = (ip as ipaddr.IPv6).toIPv4Address()
  if (ip.kind() === 'ipv4') {
    if (ipv4 === 24) {
      const o = (ip as ipaddr.IPv4).octets
      return `${o[0]}.${o[1]}.${o[2]}.0/24`
    }
    return `${ipaddr.IPv4.networkAddressFromCIDR(`${ip.toString()}/${ipv4}`).toString()}/${ipv4}`
  }
  return `${ipaddr.IPv6.networkAddressFromCIDR(`${ip.toString()}/${ipv6}`).toString()}/${ipv6}`
}
