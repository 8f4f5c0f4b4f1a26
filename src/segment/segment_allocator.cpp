#include "src/segment/segment_allocator.h"

#include <cstdio>

namespace znslab::segment {

Result<std::unique_ptr<SegmentAllocator>> SegmentAllocator::create(FileRegistry& files, MappingManager& mappings,
                                                                   SegmentAllocatorOptions opt) {
  if (opt.class_bytes.empty() || opt.class_bytes.size() > 255)
    return Status(Code::kInvalidArgument, "segment::SegmentAllocator: need 1..255 size classes");
  uint64_t wb = mappings.window_bytes();
  for (size_t i = 0; i < opt.class_bytes.size(); ++i) {
    uint64_t b = opt.class_bytes[i];
    if (b == 0 || (b & (b - 1)) || b > UINT32_MAX || (i && b <= opt.class_bytes[i - 1]))
      return Status(Code::kInvalidArgument,
                    "segment::SegmentAllocator: class sizes must be increasing powers of two below 4 GiB");
    if (wb % b) return Status(Code::kInvalidArgument, "segment::SegmentAllocator: window size must be >= and a multiple of every class size");
  }
  std::unique_ptr<SegmentAllocator> a(new SegmentAllocator(files, mappings));
  a->window_bytes_ = wb;
  a->max_file_bytes_ = opt.max_file_bytes;
  for (size_t i = 0; i < opt.class_bytes.size(); ++i) {
    Class c;
    c.bytes = opt.class_bytes[i];
    c.file_id = opt.first_file_id + static_cast<uint32_t>(i);
    char name[64];
    std::snprintf(name, sizeof name, "/segments-c%zu.dat", i);
    c.path = opt.dir + name;
    Status s = files.add_file(c.file_id, c.path, true);
    if (!s) return s;
    s = mappings.add_file(c.file_id, 0, 0);
    if (!s) return s;
    a->classes_.push_back(std::move(c));
  }
  return a;
}

int SegmentAllocator::class_for(size_t bytes) const noexcept {
  for (size_t i = 0; i < classes_.size(); ++i)
    if (classes_[i].bytes >= bytes) return static_cast<int>(i);
  return -1;
}

Result<Allocation> SegmentAllocator::allocate(size_t bytes) {
  int ci = bytes ? class_for(bytes) : -1;
  if (ci < 0) return Status(Code::kInvalidArgument, "segment::SegmentAllocator::allocate: size 0 or above the largest class");
  Class& c = classes_[ci];
  uint32_t id;
  bool carved = false;
  if (!c.free_list.empty()) {
    id = c.free_list.back();
    c.free_list.pop_back();
  } else {
    if (uint64_t(c.next + 1) * c.bytes > max_file_bytes_ || c.next == UINT32_MAX)
      return Status(Code::kOutOfMemory, "segment::SegmentAllocator::allocate: class file reached max_file_bytes");
    id = c.next;
    carved = true;
  }
  uint64_t off = uint64_t(id) * c.bytes;
  uint64_t widx = off / window_bytes_;
  if (c.windows.size() <= widx || !c.windows[widx]) {
    auto w = mappings_.window_for(c.file_id, off, c.bytes);
    if (!w) {
      if (!carved) c.free_list.push_back(id);
      return w.status();
    }
    if (c.windows.size() <= widx) c.windows.resize(widx + 1, nullptr);
    c.windows[widx] = *w;
  }
  Window* w = c.windows[widx];
  Pin pin;
  if (uint8_t* b = w->try_pin()) {
    pin = Pin(w, b + (off - w->file_offset), c.bytes);
  } else {
    auto p = mappings_.pin_window(w, off, c.bytes);
    if (!p) {
      if (!carved) c.free_list.push_back(id);
      return p.status();
    }
    pin = std::move(*p);
  }
  if (carved) {
    if (c.generation.capacity() == c.generation.size())
      c.generation.reserve(c.generation.size() + window_bytes_ / c.bytes);  // one window's worth
    c.generation.push_back(0);
    ++c.next;
  }
  uint32_t gen = ++c.generation[id];  // even -> odd: allocated
  ++live_;
  ++allocations_;
  live_bytes_ += c.bytes;
  Allocation a;
  a.ref = SegmentRef{c.file_id, id, off, static_cast<uint32_t>(c.bytes), static_cast<uint8_t>(ci), gen, w};
  a.pin = std::move(pin);
  return a;
}

Status SegmentAllocator::free(const SegmentRef& r) {
  Status s = check(r);
  if (!s) return s;
  Class& c = classes_[r.class_id];
  if ((c.generation[r.segment_id] & 1u) == 0)
    return Status(Code::kDoubleFree, "segment::SegmentAllocator::free: segment not allocated");
  ++c.generation[r.segment_id];  // odd -> even: free
  c.free_list.push_back(r.segment_id);
  --live_;
  ++frees_;
  live_bytes_ -= c.bytes;
  return Status::ok();
}

Status SegmentAllocator::free(Allocation&& a) {
  a.pin.reset();
  Status s = free(a.ref);
  a.ref.window = nullptr;
  return s;
}

SegmentAllocatorStats SegmentAllocator::stats() const noexcept {
  SegmentAllocatorStats s;
  s.segments_live = live_;
  s.allocations = allocations_;
  s.frees = frees_;
  s.live_bytes = live_bytes_;
  s.metadata_bytes = sizeof(*this);
  for (const Class& c : classes_) {
    s.segments_total += c.next;
    s.metadata_bytes += sizeof(Class) + c.path.capacity() + c.free_list.capacity() * sizeof(uint32_t) +
                        c.generation.capacity() * sizeof(uint32_t) + c.windows.capacity() * sizeof(Window*);
  }
  return s;
}

}  // namespace znslab::segment
