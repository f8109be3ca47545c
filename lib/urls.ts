/**
 * The URL builder: the one place URLs of the API are written, shared by the server (Location
 * and Link headers) and the client (request URLs). It fills the route descriptors' templates.
 */

import { routesByName, type RouteDescriptor, type RouteName } from './routes.js'

export interface UrlBuilderOptions {
  /**
   * Absolute base (scheme, host and optional path prefix), e.g. `https://registry.example.com`.
   * Empty for relative URLs (`/v2/...`).
   */
  base?: string
}

export interface RequestFacts {
  /** `Host` header of the request. */
  host?: string
  /** Protocol the request came in on (`http` or `https`). */
  protocol?: string
  /** `X-Forwarded-Host`, used only when `trustForwarded` is on. */
  forwardedHost?: string
  /** `X-Forwarded-Proto`, used only when `trustForwarded` is on. */
  forwardedProto?: string
}

export interface BaseUrlPolicy {
  /** A configured public base URL: wins over anything the request says. */
  publicUrl?: string
  /** Build absolute URLs from the request's host (default) or relative ones. */
  relative?: boolean
  /** Honour X-Forwarded-Proto and X-Forwarded-Host (behind a trusted proxy). */
  trustForwarded?: boolean
}

type Query = Record<string, string | number | readonly string[] | undefined>

/**
 * RFC 9110's `Host`: uri-host [ ":" port ], where uri-host is an IP literal (`[...]`), or a
 * reg-name (unreserved, percent-encoded and sub-delims characters; an IPv4 address is one).
 * No quote, angle bracket, space, slash, backslash or `@`: a valid host can go into a `Link`,
 * `Location` or a quoted challenge parameter as it is.
 */
const HOST = /^(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[A-Za-z0-9._~!$&'()*+,;=:-]+)\]|(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{2})+)(?::[0-9]{0,5})?$/

/** True when `host` follows the grammar of the Host header (and is not empty). */
export function isValidHost (host: string): boolean {
  return host.length <= 1024 && HOST.test(host)
}

function firstValue (header: string | undefined): string | undefined {
  const value = header?.split(',')[0]?.trim()
  return value === undefined || value === '' ? undefined : value
}

/** Decides the base of absolute URLs from configuration and the request. */
export function resolveBase (policy: BaseUrlPolicy, facts: RequestFacts): string {
  if (policy.publicUrl !== undefined && policy.publicUrl !== '') return policy.publicUrl.replace(/\/+$/, '')
  if (policy.relative === true) return ''
  const host = (policy.trustForwarded === true ? firstValue(facts.forwardedHost) : undefined) ?? facts.host
  // The request's hooks refuse a bad Host first; an invalid one never reaches a URL.
  if (host === undefined || !isValidHost(host)) return ''
  const proto = (policy.trustForwarded === true ? firstValue(facts.forwardedProto) : undefined) ?? facts.protocol ?? 'http'
  return `${proto === 'https' ? 'https' : 'http'}://${host}`
}

function encodeQuery (query: Query | undefined): string {
  if (query === undefined) return ''
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined) continue
    if (Array.isArray(value)) {
      for (const item of value) params.append(key, item)
    } else {
      params.append(key, String(value))
    }
  }
  const text = params.toString()
  return text === '' ? '' : `?${text}`
}

export class UrlBuilder {
  readonly base: string

  constructor (options: UrlBuilderOptions = {}) {
    this.base = (options.base ?? '').replace(/\/+$/, '')
  }

  /**
   * Fills a route's template (a spec route by name, or any descriptor: extension routes);
   * `{name}` is kept as is (it contains `/`), others are encoded.
   */
  build (route: RouteName | RouteDescriptor, vars: Readonly<Record<string, string>> = {}, query?: Query): string {
    const descriptor: RouteDescriptor = typeof route === 'string' ? routesByName[route] : route
    const path = descriptor.path.replace(/\{(\w+)\}/g, (_, key: string) => {
      const value = vars[key]
      if (value === undefined) throw new TypeError(`route ${descriptor.name} needs ${key}`)
      return key === 'name' ? value : encodeURIComponent(value).replace(/%3A/gi, ':')
    })
    return `${this.base}${path}${encodeQuery(query)}`
  }

  apiRoot (): string {
    return this.build('base')
  }

  catalog (query?: { n?: number, last?: string }): string {
    return this.build('catalog', {}, query)
  }

  tags (name: string, query?: { n?: number, last?: string }): string {
    return this.build('tags', { name }, query)
  }

  manifest (name: string, reference: string, query?: { tag?: readonly string[] }): string {
    return this.build('manifest', { name, reference }, query)
  }

  blob (name: string, digest: string): string {
    return this.build('blob', { name, digest })
  }

  blobUpload (name: string, query?: { digest?: string, mount?: string, from?: string, 'digest-algorithm'?: string }): string {
    return this.build('blob-upload', { name }, query)
  }

  blobUploadChunk (name: string, uuid: string, query?: { digest?: string, size?: number }): string {
    return this.build('blob-upload-chunk', { name, uuid }, query)
  }

  referrers (name: string, digest: string, query?: { artifactType?: string, n?: number, last?: string }): string {
    return this.build('referrers', { name, digest }, query)
  }
}
