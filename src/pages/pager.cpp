#include "src/pages/pager.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "src/common/crc32c.h"
#include "src/pages/pages.h"

namespace znslab::pages {
namespace {

constexpr uint64_t kSuperMagic = 0x5245474150534e5aull;  // "ZNSPAGER"
constexpr uint64_t kMetaMagic = 0x4154454d50534e5aull;   // "ZNSPMETA"
constexpr uint32_t kVersion = 1;
constexpr uint64_t kChunk = 4096;      // CRC and dirty-tracking unit of a meta body
constexpr uint64_t kSuperSlot = 4096;  // each superblock copy owns one OS page

// One superblock copy (at 0 and at 4096). crc covers every byte before it.
struct Super {
  uint64_t magic;
  uint32_t version;
  uint32_t page_size;
  uint32_t max_pages;
  uint32_t active;  // meta copy holding the committed state (0 or 1)
  uint64_t aux_bytes;
  uint64_t data_off;
  uint64_t meta_off[2];
  uint64_t meta_bytes;
  uint64_t meta_hdr_bytes;
  uint64_t generation;  // generation of the committed state
  uint32_t reserved;
  uint32_t crc;
};
static_assert(sizeof(Super) == 88);

// Header of one meta copy; followed by uint32 crc[nchunks], then (at
// meta_hdr_bytes) the body. crc = CRC32C(header bytes before crc ++ table).
struct MetaHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t copy;
  uint64_t generation;
  uint32_t page_count;
  uint32_t nchunks;
  uint64_t allocated;
  uint64_t body_bytes;
  uint32_t reserved;
  uint32_t crc;
};
static_assert(sizeof(MetaHeader) == 56);

uint64_t round_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

struct Geometry {
  uint32_t page_size = 0, max_pages = 0, unit = 1;
  uint64_t bitmap_bytes = 0, aux_bytes = 0, body_bytes = 0, nchunks = 0;
  uint64_t meta_hdr_bytes = 0, meta_bytes = 0, meta_off[2] = {0, 0}, data_off = 0;
};

Geometry make_geometry(uint32_t page_size, uint32_t max_pages, uint64_t aux_bytes) {
  Geometry g;
  g.page_size = page_size;
  g.unit = page_size >= 4096 ? 1 : 4096 / page_size;
  g.max_pages = uint32_t(round_up(max_pages, g.unit));
  g.bitmap_bytes = round_up((uint64_t(g.max_pages) + 7) / 8, kChunk);
  g.aux_bytes = round_up(aux_bytes, kChunk);
  g.body_bytes = g.bitmap_bytes + g.aux_bytes;
  g.nchunks = g.body_bytes / kChunk;
  g.meta_hdr_bytes = round_up(sizeof(MetaHeader) + 4 * g.nchunks, kChunk);
  g.meta_bytes = g.meta_hdr_bytes + g.body_bytes;
  g.meta_off[0] = 2 * kSuperSlot;
  g.meta_off[1] = g.meta_off[0] + g.meta_bytes;
  g.data_off = round_up(g.meta_off[1] + g.meta_bytes, std::max<uint64_t>(page_size, 4096));
  return g;
}

bool super_valid(const Super& s) {
  if (s.magic != kSuperMagic || s.version != kVersion) return false;
  if (crc32c(&s, offsetof(Super, crc)) != s.crc) return false;
  if (s.page_size < 1024 || (s.page_size & (s.page_size - 1)) || s.active > 1 || s.max_pages == 0) return false;
  Geometry g = make_geometry(s.page_size, s.max_pages, s.aux_bytes);
  return g.max_pages == s.max_pages && g.aux_bytes == s.aux_bytes && g.data_off == s.data_off &&
         g.meta_off[0] == s.meta_off[0] && g.meta_off[1] == s.meta_off[1] && g.meta_bytes == s.meta_bytes &&
         g.meta_hdr_bytes == s.meta_hdr_bytes;
}

Super make_super(const Geometry& g, uint32_t active, uint64_t generation) {
  Super s;
  std::memset(&s, 0, sizeof s);
  s.magic = kSuperMagic;
  s.version = kVersion;
  s.page_size = g.page_size;
  s.max_pages = g.max_pages;
  s.active = active;
  s.aux_bytes = g.aux_bytes;
  s.data_off = g.data_off;
  s.meta_off[0] = g.meta_off[0];
  s.meta_off[1] = g.meta_off[1];
  s.meta_bytes = g.meta_bytes;
  s.meta_hdr_bytes = g.meta_hdr_bytes;
  s.generation = generation;
  s.crc = crc32c(&s, offsetof(Super, crc));
  return s;
}

// Checks one meta copy (header, table, every body chunk) at `m`.
bool meta_valid(const uint8_t* m, const Geometry& g, uint32_t copy, MetaHeader* out) {
  MetaHeader h;
  std::memcpy(&h, m, sizeof h);
  if (h.magic != kMetaMagic || h.version != kVersion || h.copy != copy || h.nchunks != g.nchunks ||
      h.body_bytes != g.body_bytes || h.page_count > g.max_pages)
    return false;
  const uint8_t* table = m + sizeof(MetaHeader);
  uint32_t crc = crc32c_extend(crc32c(&h, offsetof(MetaHeader, crc)), table, 4 * g.nchunks);
  if (crc != h.crc) return false;
  const uint8_t* body = m + g.meta_hdr_bytes;
  for (uint64_t c = 0; c < g.nchunks; ++c) {
    uint32_t want;
    std::memcpy(&want, table + 4 * c, 4);
    if (crc32c(body + c * kChunk, kChunk) != want) return false;
  }
  if (out) *out = h;
  return true;
}

// Reads both superblocks with pread and returns the valid one (A first).
Status read_super(int fd, Super* out) {
  uint8_t buf[2 * kSuperSlot];
  ssize_t n = ::pread(fd, buf, sizeof buf, 0);
  if (n < 0) return Status::from_errno(errno, "pager: pread superblocks");
  Super a{}, b{};
  if (size_t(n) >= sizeof(Super)) std::memcpy(&a, buf, sizeof a);
  if (size_t(n) >= kSuperSlot + sizeof(Super)) std::memcpy(&b, buf + kSuperSlot, sizeof b);
  if (size_t(n) >= sizeof(Super) && super_valid(a)) { *out = a; return Status::ok(); }
  if (size_t(n) >= kSuperSlot + sizeof(Super) && super_valid(b)) { *out = b; return Status::ok(); }
  return Status(Code::kCorrupt, "pager::open: both superblock copies fail their magic/CRC32C check");
}

Geometry geometry_of(const Super& s) { return make_geometry(s.page_size, s.max_pages, s.aux_bytes); }

}  // namespace

bool parse_sync_mode(const std::string& s, SyncMode* out) noexcept {
  if (s == "none") *out = SyncMode::kNone;
  else if (s == "commit") *out = SyncMode::kCommit;
  else if (s == "each") *out = SyncMode::kEach;
  else return false;
  return true;
}

const char* sync_mode_name(SyncMode m) noexcept {
  switch (m) {
    case SyncMode::kNone: return "none";
    case SyncMode::kCommit: return "commit";
    case SyncMode::kEach: return "each";
  }
  return "?";
}

// ---- Pager --------------------------------------------------------------------

Pager::~Pager() {
  if (base_) (void)unmap(base_, reserved_bytes_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<Pager>> Pager::open(const std::string& path, const PagerOptions& o) {
  int flags = O_RDWR | O_CLOEXEC | (o.create ? O_CREAT : 0);
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) return Status::from_errno(errno, "pager::open open");
  std::unique_ptr<Pager> p(new Pager());
  p->fd_ = fd;
  p->sync_ = o.sync;
  p->preallocate_ = o.preallocate;
  p->hook_ = o.commit_hook;
  p->hook_arg_ = o.commit_hook_arg;
  auto fsz = file_size(fd);
  if (!fsz) return fsz.status();
  const bool fresh = *fsz == 0;

  Geometry g;
  Super sb{};
  if (fresh) {
    if (o.page_size < 1024 || (o.page_size & (o.page_size - 1)) || o.max_pages == 0 ||
        o.initial_pages > o.max_pages || (o.aux_bytes >> 40))
      return Status(Code::kInvalidArgument, "pager::open: page_size must be a power of two >= 1024, 0 < initial_pages <= max_pages");
    g = make_geometry(o.page_size, o.max_pages, o.aux_bytes);
  } else {
    if (Status s = read_super(fd, &sb); !s) return s;
    g = geometry_of(sb);
  }
  p->page_size_ = g.page_size;
  p->max_pages_ = g.max_pages;
  p->grow_pages_ = uint32_t(round_up(o.grow_pages, g.unit));
  p->data_off_ = g.data_off;
  p->meta_off_[0] = g.meta_off[0];
  p->meta_off_[1] = g.meta_off[1];
  p->meta_bytes_ = g.meta_bytes;
  p->meta_hdr_bytes_ = g.meta_hdr_bytes;
  p->bitmap_bytes_ = g.bitmap_bytes;
  p->aux_bytes_ = g.aux_bytes;
  p->body_bytes_ = g.body_bytes;
  p->nchunks_ = g.nchunks;
  p->reserved_bytes_ = g.data_off + uint64_t(g.max_pages) * g.page_size;

  uint64_t file_bytes = *fsz;
  if (fresh) {
    uint32_t init = uint32_t(round_up(std::max<uint32_t>(o.initial_pages, 1), g.unit));
    init = std::min(init, g.max_pages);
    file_bytes = g.data_off + uint64_t(init) * g.page_size;
    if (Status s = truncate_file(fd, file_bytes); !s) return s;
    if (o.preallocate) {
      if (Status s = allocate_file(fd, 0, file_bytes); !s) return s;
    }
  } else if (file_bytes < g.data_off) {
    return Status(Code::kCorrupt, "pager::open: file shorter than its metadata areas");
  }
  auto res = reserve_address_space(p->reserved_bytes_);
  if (!res) return res.status();
  p->base_ = static_cast<uint8_t*>(*res);
  file_bytes = std::min<uint64_t>(file_bytes, p->reserved_bytes_);
  uint64_t pages_in_file = (file_bytes - g.data_off) / g.page_size / g.unit * g.unit;
  file_bytes = g.data_off + pages_in_file * g.page_size;
  if (Status s = map_file_fixed(p->base_, fd, 0, file_bytes, true); !s) return s;
  // Pages are touched in allocation order, not file order: read-ahead on a
  // fault would only fill the page cache with neighbours (mostly holes).
  (void)advise(p->base_, file_bytes, Advice::kRandom);
  p->mapped_bytes_ = file_bytes;
  p->page_count_ = uint32_t(pages_in_file);

  p->body_.assign(g.body_bytes / 8, 0);
  uint64_t dw = (g.nchunks + 63) / 64;
  p->dirty_[0].assign(dw, 0);
  p->dirty_[1].assign(dw, 0);
  // Summary levels over the bitmap words.
  uint64_t n = g.bitmap_bytes / 8;
  do {
    n = (n + 63) / 64;
    p->levels_.emplace_back(n, 0);
  } while (n > 1);

  if (fresh) {
    p->mark_dirty(0, g.body_bytes);
    p->rebuild_summary();
    p->active_ = 1;
    p->generation_ = 0;
    // Two commits: both meta copies valid from the start.
    if (Status s = p->commit(); !s) return s;
    if (Status s = p->commit(); !s) return s;
    p->commits_ = 0;
    return p;
  }

  uint32_t sel = sb.active;
  MetaHeader h;
  if (!meta_valid(p->base_ + g.meta_off[sel], g, sel, &h)) {
    sel ^= 1;
    if (!meta_valid(p->base_ + g.meta_off[sel], g, sel, &h))
      return Status(Code::kCorrupt, "pager::open: both meta copies fail their CRC32C check");
  }
  std::memcpy(p->body_.data(), p->base_ + g.meta_off[sel] + g.meta_hdr_bytes, g.body_bytes);
  p->active_ = sel;
  p->generation_ = h.generation;
  if (h.page_count > p->page_count_) return Status(Code::kCorrupt, "pager::open: committed page count beyond the file size");
  uint64_t cnt = 0;
  for (uint64_t w = 0; w < g.bitmap_bytes / 8; ++w) cnt += uint64_t(__builtin_popcountll(p->body_[w]));
  p->allocated_ = p->peak_allocated_ = cnt;
  // The other copy: only chunks that differ need rewriting at the next commit.
  const uint32_t other = sel ^ 1;
  const uint8_t* om = p->base_ + g.meta_off[other];
  if (meta_valid(om, g, other, nullptr)) {
    const uint8_t* ob = om + g.meta_hdr_bytes;
    const uint8_t* wb = reinterpret_cast<const uint8_t*>(p->body_.data());
    for (uint64_t c = 0; c < g.nchunks; ++c)
      if (std::memcmp(ob + c * kChunk, wb + c * kChunk, kChunk) != 0) p->dirty_[other][c >> 6] |= 1ull << (c & 63);
  } else {
    for (uint64_t c = 0; c < g.nchunks; ++c) p->dirty_[other][c >> 6] |= 1ull << (c & 63);
  }
  p->rebuild_summary();
  return p;
}

void Pager::mark_dirty(uint64_t off, uint64_t len) noexcept {
  if (len == 0) return;
  for (uint64_t c = off / kChunk, e = (off + len - 1) / kChunk; c <= e; ++c) {
    dirty_[0][c >> 6] |= 1ull << (c & 63);
    dirty_[1][c >> 6] |= 1ull << (c & 63);
  }
}

bool Pager::word_has_free(uint64_t w) const noexcept {
  uint64_t base = w * 64;
  if (base >= page_count_) return false;
  uint64_t valid = page_count_ - base >= 64 ? ~0ull : (1ull << (page_count_ - base)) - 1;
  return (~bitmap()[w] & valid) != 0;
}

void Pager::summary_update(uint64_t w) noexcept {
  bool has = word_has_free(w);
  uint64_t idx = w;
  for (auto& lv : levels_) {
    uint64_t& word = lv[idx >> 6];
    uint64_t old = word, bit = 1ull << (idx & 63);
    word = has ? (old | bit) : (old & ~bit);
    if ((old != 0) == (word != 0)) return;
    has = word != 0;
    idx >>= 6;
  }
}

void Pager::rebuild_summary() noexcept {
  for (auto& lv : levels_) std::fill(lv.begin(), lv.end(), 0);
  const uint64_t words = (uint64_t(page_count_) + 63) / 64;
  for (uint64_t w = 0; w < words; ++w)
    if (word_has_free(w)) levels_[0][w >> 6] |= 1ull << (w & 63);
  for (size_t k = 0; k + 1 < levels_.size(); ++k)
    for (uint64_t i = 0; i < levels_[k].size(); ++i)
      if (levels_[k][i]) levels_[k + 1][i >> 6] |= 1ull << (i & 63);
}

int64_t Pager::find_free() const noexcept {
  const uint64_t top = levels_.back()[0];
  if (top == 0) return -1;
  uint64_t idx = uint64_t(__builtin_ctzll(top));
  for (size_t k = levels_.size() - 1; k-- > 0;) idx = idx * 64 + uint64_t(__builtin_ctzll(levels_[k][idx]));
  // idx is now a bitmap word with a free page below page_count.
  uint64_t base = idx * 64;
  uint64_t valid = page_count_ - base >= 64 ? ~0ull : (1ull << (page_count_ - base)) - 1;
  return int64_t(base + uint64_t(__builtin_ctzll(~bitmap()[idx] & valid)));
}

Status Pager::grow(uint64_t min_new_pages) noexcept {
  if (page_count_ >= max_pages_) return Status(Code::kOutOfSpace, "pager: max_pages reached");
  const uint64_t unit = page_size_ >= 4096 ? 1 : 4096 / page_size_;
  uint64_t step = grow_pages_ ? grow_pages_ : std::clamp<uint64_t>(page_count_, 256, 1u << 18);
  uint64_t want = std::max<uint64_t>(uint64_t(page_count_) + step, min_new_pages);
  want = std::min<uint64_t>(round_up(want, unit), max_pages_);
  const uint64_t new_bytes = data_off_ + want * page_size_;
  if (Status s = truncate_file(fd_, new_bytes); !s) return s;
  if (preallocate_) {
    if (Status s = allocate_file(fd_, mapped_bytes_, new_bytes - mapped_bytes_); !s) {
      (void)truncate_file(fd_, mapped_bytes_);
      return s;
    }
  }
  if (Status s = map_file_fixed(base_ + mapped_bytes_, fd_, mapped_bytes_, new_bytes - mapped_bytes_, true); !s) {
    (void)truncate_file(fd_, mapped_bytes_);
    return s;
  }
  (void)advise(base_ + mapped_bytes_, new_bytes - mapped_bytes_, Advice::kRandom);
  const uint64_t first_word = page_count_ / 64;
  mapped_bytes_ = new_bytes;
  page_count_ = uint32_t(want);
  for (uint64_t w = first_word; w < (want + 63) / 64; ++w) summary_update(w);
  ++grows_;
  return Status::ok();
}

Status Pager::maybe_sync_each() noexcept { return sync_ == SyncMode::kEach ? commit() : Status::ok(); }

Result<PageId> Pager::alloc() noexcept {
  int64_t id = find_free();
  if (id < 0) {
    if (Status s = grow(0); !s) return s;
    id = find_free();
    if (id < 0) return Status(Code::kOutOfSpace, "pager::alloc: no free page");
  }
  const uint64_t w = uint64_t(id) >> 6;
  bitmap()[w] |= 1ull << (id & 63);
  mark_dirty(w * 8, 8);
  if (!word_has_free(w)) summary_update(w);
  if (++allocated_ > peak_allocated_) peak_allocated_ = allocated_;
  if (Status s = maybe_sync_each(); !s) return s;
  return PageId(id);
}

Status Pager::free(PageId id) noexcept {
  if (id >= page_count_) return Status(Code::kOutOfBounds, "pager::free: page id beyond the file");
  const uint64_t w = id >> 6, bit = 1ull << (id & 63);
  if (!(bitmap()[w] & bit)) return Status(Code::kDoubleFree, "pager::free: page not allocated");
  const bool was_full = !word_has_free(w);
  bitmap()[w] &= ~bit;
  mark_dirty(w * 8, 8);
  if (was_full) summary_update(w);
  --allocated_;
  return maybe_sync_each();
}

Result<std::vector<PageId>> Pager::alloc_bulk(size_t n) {
  if (uint64_t(max_pages_) - allocated_ < n) return Status(Code::kOutOfSpace, "pager::alloc_bulk: not enough free pages below max_pages");
  if (uint64_t(page_count_) - allocated_ < n) {
    if (Status s = grow(allocated_ + n); !s) return s;
  }
  const SyncMode saved = sync_;
  sync_ = SyncMode::kNone == saved ? saved : SyncMode::kCommit;  // one commit at the end for kEach
  std::vector<PageId> ids;
  ids.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    auto r = alloc();
    if (!r) {
      for (PageId id : ids) (void)free(id);
      sync_ = saved;
      return r.status();
    }
    ids.push_back(*r);
  }
  sync_ = saved;
  if (Status s = maybe_sync_each(); !s) return s;
  return ids;
}

Status Pager::free_bulk(const std::vector<PageId>& ids) {
  std::vector<PageId> sorted(ids);
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 0; i < sorted.size(); ++i) {
    if (sorted[i] >= page_count_) return Status(Code::kOutOfBounds, "pager::free_bulk: page id beyond the file");
    if (i > 0 && sorted[i] == sorted[i - 1]) return Status(Code::kDoubleFree, "pager::free_bulk: duplicate page id");
    if (!is_allocated(sorted[i])) return Status(Code::kDoubleFree, "pager::free_bulk: page not allocated");
  }
  const SyncMode saved = sync_;
  if (sync_ == SyncMode::kEach) sync_ = SyncMode::kCommit;
  for (PageId id : sorted) (void)free(id);
  sync_ = saved;
  return maybe_sync_each();
}

Status Pager::commit() noexcept {
  hook(CommitStep::kBegin);
  const uint32_t y = active_ ^ 1;
  uint8_t* m = base_ + meta_off_[y];
  uint8_t* table = m + sizeof(MetaHeader);
  uint8_t* body = m + meta_hdr_bytes_;
  const uint8_t* work = reinterpret_cast<const uint8_t*>(body_.data());
  std::vector<uint64_t>& d = dirty_[y];
  for (uint64_t i = 0; i < d.size(); ++i) {
    uint64_t bits = d[i];
    while (bits) {
      uint64_t c = i * 64 + uint64_t(__builtin_ctzll(bits));
      bits &= bits - 1;
      std::memcpy(body + c * kChunk, work + c * kChunk, kChunk);
      uint32_t crc = crc32c(work + c * kChunk, kChunk);
      std::memcpy(table + 4 * c, &crc, 4);
      ++chunks_written_;
    }
    d[i] = 0;
  }
  MetaHeader h;
  std::memset(&h, 0, sizeof h);
  h.magic = kMetaMagic;
  h.version = kVersion;
  h.copy = y;
  h.generation = generation_ + 1;
  h.page_count = page_count_;
  h.nchunks = uint32_t(nchunks_);
  h.allocated = allocated_;
  h.body_bytes = body_bytes_;
  h.crc = crc32c_extend(crc32c(&h, offsetof(MetaHeader, crc)), table, 4 * nchunks_);
  std::memcpy(m, &h, sizeof h);
  hook(CommitStep::kMetaWritten);
  const bool do_sync = sync_ != SyncMode::kNone;
  if (do_sync) {
    if (Status s = sync_range(m, meta_bytes_); !s) return s;
  }
  hook(CommitStep::kMetaSynced);
  Geometry g = make_geometry(page_size_, max_pages_, aux_bytes_);
  Super sb = make_super(g, y, generation_ + 1);
  std::memcpy(base_, &sb, sizeof sb);
  hook(CommitStep::kSuperAWritten);
  if (do_sync) {
    if (Status s = sync_range(base_, kSuperSlot); !s) return s;
  }
  hook(CommitStep::kSuperASynced);
  std::memcpy(base_ + kSuperSlot, &sb, sizeof sb);
  hook(CommitStep::kSuperBWritten);
  if (do_sync) {
    if (Status s = sync_range(base_ + kSuperSlot, kSuperSlot); !s) return s;
  }
  active_ = y;
  ++generation_;
  ++commits_;
  hook(CommitStep::kSuperBSynced);
  return Status::ok();
}

PagerStats Pager::stats() const noexcept {
  PagerStats s;
  s.page_count = page_count_;
  s.allocated = allocated_;
  s.peak_allocated = peak_allocated_;
  s.generation = generation_;
  s.commits = commits_;
  s.grows = grows_;
  s.meta_chunks_written = chunks_written_;
  s.file_bytes = mapped_bytes_;
  s.metadata_file_bytes = data_off_;
  uint64_t mem = body_.size() * 8 + (dirty_[0].size() + dirty_[1].size()) * 8;
  for (auto& lv : levels_) mem += lv.size() * 8;
  s.metadata_mem_bytes = mem;
  return s;
}

// ---- ReadOnlyPager --------------------------------------------------------------

ReadOnlyPager::~ReadOnlyPager() {
  if (base_) (void)unmap(base_, reserved_bytes_);
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<ReadOnlyPager>> ReadOnlyPager::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::from_errno(errno, "read-only pager: open");
  std::unique_ptr<ReadOnlyPager> p(new ReadOnlyPager());
  p->fd_ = fd;
  Super sb;
  if (Status s = read_super(fd, &sb); !s) return s;
  p->page_size_ = sb.page_size;
  p->data_off_ = sb.data_off;
  p->reserved_bytes_ = sb.data_off + uint64_t(sb.max_pages) * sb.page_size;
  auto res = reserve_address_space(p->reserved_bytes_);
  if (!res) return res.status();
  p->base_ = static_cast<uint8_t*>(*res);
  if (Status s = p->refresh(); !s) return s;
  return p;
}

Status ReadOnlyPager::refresh() noexcept {
  auto fsz = file_size(fd_);
  if (!fsz) return fsz.status();
  uint64_t want = std::min<uint64_t>(*fsz, reserved_bytes_) & ~uint64_t(4095);
  if (want > mapped_bytes_) {
    if (Status s = map_file_fixed(base_ + mapped_bytes_, fd_, mapped_bytes_, want - mapped_bytes_, false); !s)
      return s;
    mapped_bytes_ = want;
  }
  if (mapped_bytes_ < 2 * kSuperSlot) return Status(Code::kCorrupt, "read-only pager: file too short");
  for (int attempt = 0; attempt < 1000; ++attempt) {
    Super sb;
    std::memcpy(&sb, base_, sizeof sb);
    if (!super_valid(sb)) std::memcpy(&sb, base_ + kSuperSlot, sizeof sb);
    if (!super_valid(sb)) {
      if (attempt > 100) return Status(Code::kCorrupt, "read-only pager: both superblock copies fail their CRC32C check");
      ::usleep(100);
      continue;
    }
    Geometry g = geometry_of(sb);
    if (g.data_off > mapped_bytes_) return Status(Code::kCorrupt, "read-only pager: file shorter than its metadata");
    // Snapshot the selected copy (the writer may start rewriting it two
    // commits from now), then validate the snapshot.
    for (uint32_t pick : {sb.active, sb.active ^ 1}) {
      if (pick != sb.active && attempt < 100) break;  // prefer retrying the selected copy
      scratch_.resize(g.meta_bytes);
      std::memcpy(scratch_.data(), base_ + g.meta_off[pick], g.meta_bytes);
      MetaHeader h;
      if (!meta_valid(scratch_.data(), g, pick, &h)) continue;
      bitmap_.assign(g.bitmap_bytes / 8, 0);
      std::memcpy(bitmap_.data(), scratch_.data() + g.meta_hdr_bytes, g.bitmap_bytes);
      aux_.assign(scratch_.begin() + long(g.meta_hdr_bytes + g.bitmap_bytes), scratch_.end());
      generation_ = h.generation;
      page_count_ = h.page_count;
      allocated_ = h.allocated;
      return Status::ok();
    }
    ::usleep(50);
  }
  return Status(Code::kBusy, "read-only pager: no meta copy passed its CRC32C check in 1000 attempts");
}

}  // namespace znslab::pages
