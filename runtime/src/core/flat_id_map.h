// FlatIdMap: an open-addressing hash map from non-zero 64-bit ids to values, for the page
// registry's hot lookups. Linear probing over one power-of-two array, no allocation per entry
// (std::unordered_map allocates a node for every insert), tombstones on erase, rebuilt when
// live entries plus tombstones pass 70% of capacity.
//
// Thread-safety: none (the bus guards it with its mutex).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace mmsb {

template <class V>
class FlatIdMap {
 public:
  FlatIdMap() { slots_.resize(kMinCapacity); }

  // Inserts or overwrites. `id` must not be 0 or ~0.
  void Put(std::uint64_t id, V value) {
    if ((size_ + tombstones_ + 1) * 10 > slots_.size() * 7) Rehash();
    std::size_t i = Home(id);
    std::size_t tomb = kNone;
    for (;; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.key == id) {
        s.value = std::move(value);
        return;
      }
      if (s.key == kTombstone && tomb == kNone) tomb = i;
      if (s.key == kEmpty) break;
    }
    if (tomb != kNone) {
      i = tomb;
      --tombstones_;
    }
    slots_[i] = {id, std::move(value)};
    ++size_;
  }

  V* Find(std::uint64_t id) {
    for (std::size_t i = Home(id);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.key == id) return &s.value;
      if (s.key == kEmpty) return nullptr;
    }
  }

  bool Erase(std::uint64_t id) {
    for (std::size_t i = Home(id);; i = (i + 1) & mask()) {
      Slot& s = slots_[i];
      if (s.key == id) {
        s = {kTombstone, V{}};
        --size_;
        ++tombstones_;
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }

  std::size_t size() const { return size_; }

 private:
  static constexpr std::uint64_t kEmpty = 0;
  static constexpr std::uint64_t kTombstone = ~std::uint64_t{0};
  static constexpr std::size_t kMinCapacity = 64;
  static constexpr std::size_t kNone = ~std::size_t{0};
  struct Slot {
    std::uint64_t key = kEmpty;
    V value{};
  };

  std::size_t mask() const { return slots_.size() - 1; }
  // Fibonacci hashing: ids are sequential, so spread them over the table.
  std::size_t Home(std::uint64_t id) const {
    return static_cast<std::size_t>((id * 0x9E3779B97F4A7C15ull) >> 17) & mask();
  }
  void Rehash() {
    std::size_t cap = slots_.size();
    while ((size_ + 1) * 10 > cap * 5) cap *= 2;  // live entries at most half full afterwards
    std::vector<Slot> old(cap);
    old.swap(slots_);
    size_ = tombstones_ = 0;
    for (Slot& s : old) {
      if (s.key != kEmpty && s.key != kTombstone) Put(s.key, std::move(s.value));
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  std::size_t tombstones_ = 0;
};

}  // namespace mmsb
