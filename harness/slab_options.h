// Every field of slab::Options as a workload key `slab_<field>` (issue 8,
// section 1): one table gives each key's type, default, unit and meaning;
// defaults, validation, conversion to slab::Options, the result's
// allocator.options and `znslab keys` all read it, so a new option is one row.
//
// Keys (defaults are slab::Options{}'s):
//   slab_reclaim               string  immediate | on_close | off
//   slab_arena_bytes           bytes   virtual space reserved for slabs
//   slab_chunk_bytes           bytes   per-epoch chunk (power of two, multiple of 4 KiB)
//   slab_use_thp               bool    madvise(MADV_HUGEPAGE) on chunks
//   slab_populate_slabs        count   slabs pre-faulted at once when an epoch grows
//   slab_reclaim_batch_slabs   count   empty slabs that trigger a batched decommit
//   slab_reclaim_batch_pct     %       ... and the share of committed slabs they must reach
//   slab_scan_retry_threshold  ratio   adaptive bitmap scan switch threshold
//   slab_scan_dwell_checks     count   checks before the scan mode may switch back
//   slab_thread_cache          bool    per-thread magazines on the fast path
//   slab_handle_key            integer key of the handle generation hash (0 = random)
// Thread-safety: pure functions. Errors: ConfigKeyError naming the key.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/registry.h"
#include "src/slab/slab.h"

namespace znslab::harness {

// {"slab_reclaim": "immediate", ...}: merged into the defaults() of every
// workload that drives the temporal slab.
nlohmann::json slab_option_defaults();
// Range and enum checks of the slab_* keys present in `cfg`.
void validate_slab_options(const nlohmann::json& cfg);
// slab::Options from the slab_* keys present in `cfg` (others default).
slab::Options slab_options_from(const nlohmann::json& cfg);
// The options as the result records them (allocator.options): field names
// without the slab_ prefix.
nlohmann::json slab_options_json(const slab::Options& o);
// One row per key, for `znslab keys` and docs/slab.md.
const std::vector<KeyDoc>& slab_option_docs();

}  // namespace znslab::harness
