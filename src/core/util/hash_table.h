// What the plugin's hash tables share (one copy): giving buckets back.
#pragma once

namespace xmatters {

// A hash table keeps its buckets when entries go: after a storm of keys or a
// backlog that drained, give them back (amortized: only once it is 8 times
// emptier than its buckets; bounded memory).
template <typename Map>
void shrink_if_sparse(Map& map) {
  if (map.bucket_count() > 1024 && map.size() * 8 < map.bucket_count()) map.rehash(0);
}

}  // namespace xmatters
