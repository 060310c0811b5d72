#include "fanout/dedupe.hpp"

#include <algorithm>
#include <cassert>
#include <functional>
#include <list>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

namespace fanout {
namespace {

using Clock = std::chrono::steady_clock;

// A seq and a payload hash live in different spaces; the flag keeps seq 42 from matching a hash 42.
struct Id {
  std::uint64_t value = 0;
  bool from_seq = false;
  bool operator==(const Id&) const = default;
};

// splitmix64's finalizer: sequence numbers are consecutive, so spread them before masking.
std::uint64_t mix(std::uint64_t x) noexcept {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}
std::uint64_t mix(Id id) noexcept { return mix(id.value ^ (id.from_seq ? 0x9e3779b97f4a7c15ULL : 0)); }

Id identity(const Routed& route, std::string_view payload) noexcept {
  if (route.seq) return {*route.seq, true};
  const std::hash<std::string_view> h;
  std::uint64_t x = h(payload);
  // "no key" and "empty key" are different identities.
  const std::uint64_t k = route.key ? h(*route.key) : 0x2545f4914f6cdd1dULL;
  x ^= k + 0x9e3779b97f4a7c15ULL + (x << 6) + (x >> 2);
  return {x, false};
}

// The identities of one topic, oldest first: a ring of entries in arrival order (so eviction by
// count and by age both pop the front) with an open-addressing index over it (linear probing,
// backward-shift deletion, no tombstones). Both grow geometrically up to the window and then stay,
// so a busy topic costs no allocation per message, and a quiet one costs little memory.
class Window {
 public:
  explicit Window(std::size_t limit) : limit_(limit) {}

  bool contains(Id id) const noexcept { return find_slot(id) != npos; }

  void forget_older_than(Clock::time_point cutoff) noexcept {
    while (size_ != 0 && ring_[head_].seen <= cutoff) pop_front();
  }

  // Precondition: !contains(id).
  void insert(Id id, Clock::time_point now) {
    if (size_ == ring_.size()) {
      if (ring_.size() < limit_)
        grow();
      else
        pop_front();
    }
    const std::size_t pos = (head_ + size_) % ring_.size();
    ring_[pos] = {id, now};
    ++size_;
    place(pos);
  }

  void clear() noexcept {
    std::fill(slots_.begin(), slots_.end(), 0u);
    head_ = size_ = 0;
  }

  std::size_t size() const noexcept { return size_; }

 private:
  struct Entry {
    Id id;
    Clock::time_point seen;
  };
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);

  std::size_t mask() const noexcept { return slots_.size() - 1; }

  std::size_t find_slot(Id id) const noexcept {
    if (slots_.empty()) return npos;
    for (std::size_t i = mix(id) & mask();; i = (i + 1) & mask()) {
      if (slots_[i] == 0) return npos;
      if (ring_[slots_[i] - 1].id == id) return i;
    }
  }

  void place(std::size_t pos) noexcept {
    std::size_t i = mix(ring_[pos].id) & mask();
    while (slots_[i] != 0) i = (i + 1) & mask();
    slots_[i] = static_cast<std::uint32_t>(pos + 1);
  }

  void pop_front() noexcept {
    std::size_t i = find_slot(ring_[head_].id);
    assert(i != npos && slots_[i] == head_ + 1);
    // Backward-shift deletion: pull later members of the probe run into the hole unless their home
    // slot lies cyclically in (hole, j], where they must stay to remain reachable.
    for (std::size_t j = i;;) {
      j = (j + 1) & mask();
      if (slots_[j] == 0) break;
      const std::size_t home = mix(ring_[slots_[j] - 1].id) & mask();
      const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
      if (stays) continue;
      slots_[i] = slots_[j];
      i = j;
    }
    slots_[i] = 0;
    head_ = (head_ + 1) % ring_.size();
    --size_;
  }

  // Called only when the ring is full: relinearise it into a larger one and reindex.
  void grow() {
    const std::size_t cap = std::min(limit_, std::max<std::size_t>(8, ring_.size() * 2));
    std::vector<Entry> ring(cap);
    for (std::size_t n = 0; n < size_; ++n) ring[n] = ring_[(head_ + n) % ring_.size()];
    ring_ = std::move(ring);
    head_ = 0;
    std::size_t slots = 16;
    while (slots < cap * 2) slots *= 2;  // load factor at most one half
    slots_.assign(slots, 0u);
    for (std::size_t n = 0; n < size_; ++n) place(n);
  }

  std::size_t limit_;
  std::vector<Entry> ring_;
  std::vector<std::uint32_t> slots_;  // 0: empty; otherwise a ring position + 1
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

struct Topic {
  std::string name;
  Window window;
};

}  // namespace

struct Dedupe::Impl {
  Options options;
  // Most recently used topic first. When max_topics is reached, the least recently used topic is
  // forgotten (its node reused for the new one): an active topic keeps its history, and a topic quiet
  // long enough to be evicted has usually outlived max_age anyway. Refusing to track new topics
  // instead would let every message of a new topic through twice, for as long as the old ones stay.
  std::list<Topic> topics;
  std::unordered_map<std::string_view, std::list<Topic>::iterator> by_name;  // keys view Topic::name
  std::uint64_t duplicates = 0;

  explicit Impl(Options o) : options(o) {
    if (options.window == 0) throw std::invalid_argument("fanout::Dedupe: window must be at least 1");
    if (options.window > (std::size_t{1} << 30))
      throw std::invalid_argument("fanout::Dedupe: window is limited to 2^30 identities per topic");
    if (options.max_topics == 0) throw std::invalid_argument("fanout::Dedupe: max_topics must be at least 1");
  }

  Window& window_for(const std::string& name) {
    if (auto it = by_name.find(name); it != by_name.end()) {
      topics.splice(topics.begin(), topics, it->second);
      return it->second->window;
    }
    if (by_name.size() >= options.max_topics) {
      auto last = std::prev(topics.end());
      by_name.erase(last->name);
      last->name = name;
      last->window.clear();
      topics.splice(topics.begin(), topics, last);
    } else {
      topics.push_front(Topic{name, Window(options.window)});
    }
    by_name.emplace(topics.front().name, topics.begin());
    return topics.front().window;
  }

  bool first_time(const Routed& route, std::string_view payload) {
    const Id id = identity(route, payload);
    const Clock::time_point now = Clock::now();
    Window& w = window_for(route.topic);
    // Remembered while younger than max_age. (The guard keeps a huge max_age from wrapping the clock.)
    if (options.max_age < std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()))
      w.forget_older_than(now - options.max_age);
    if (w.contains(id)) {
      ++duplicates;
      return false;
    }
    w.insert(id, now);
    return true;
  }
};

Dedupe::Dedupe() : Dedupe(Options{}) {}
Dedupe::Dedupe(Options options) : impl_(std::make_unique<Impl>(options)) {}
Dedupe::~Dedupe() = default;
Dedupe::Dedupe(Dedupe&&) noexcept = default;
Dedupe& Dedupe::operator=(Dedupe&&) noexcept = default;

bool Dedupe::first_time(const Routed& route, std::string_view payload) { return impl_->first_time(route, payload); }

std::uint64_t Dedupe::duplicates() const noexcept { return impl_->duplicates; }

}  // namespace fanout
