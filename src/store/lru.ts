// An LRU bounded by entry count that allocates as it fills. lru-cache's `max` preallocates
// arrays of `max` slots up front: a 100,000-account store with its disable, session and
// one-time-token caches is then millions of slots the garbage collector walks on every major
// collection — measured at about 7% of proxy throughput. `maxSize` with a size of one per
// entry gives the same bound with arrays that grow as entries arrive.
import { LRUCache } from 'lru-cache'

const ONE = () => 1

// `{}` (any value but null and undefined) is what LRUCache itself requires of keys and values.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export function boundedLru<K extends {}, V extends {}>(
  entries: number,
  options: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: ONE } as LRUCache.Options<K, V, unknown>)
}
