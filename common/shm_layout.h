#pragma once
// The layout of a ShmGroup segment (common/shm_collective.h), shared by its two source files:
//   [0, 128)                  ShmGroup::Header
//   [128, 128 + 64 x size)    one Peer per local rank (its own cache line)
//   then, page-aligned        2 sets x size slots of chunk bytes, then 2 result areas of chunk
// Internal to common/.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/shm_collective.h"

namespace common {

struct ShmGroup::Header {
  std::atomic<uint64_t> magic;  // written last by the creator
  uint32_t size;
  uint32_t chunk;
  int32_t creator_pid;
  std::atomic<uint32_t> attached;  // ranks that mapped the segment
  std::atomic<int32_t> failed;     // 1 + the local rank that gave up; 0: none
};

}  // namespace common

namespace common::shm_layout {

inline constexpr size_t kHeaderBytes = 128;
inline constexpr size_t kPeerBytes = 64;

struct alignas(64) Peer {
  std::atomic<uint32_t> seq;       // barriers this rank has reached
  std::atomic<uint32_t> sleepers;  // ranks sleeping in FUTEX_WAIT on seq
  std::atomic<int32_t> pid;        // 0 until the rank has mapped the segment
};
static_assert(sizeof(Peer) == kPeerBytes);

inline Peer* PeerAt(void* base, int rank) {
  return reinterpret_cast<Peer*>(static_cast<char*>(base) + kHeaderBytes +
                                 kPeerBytes * static_cast<size_t>(rank));
}

inline size_t DataOffset(int size) {
  const size_t end = kHeaderBytes + kPeerBytes * static_cast<size_t>(size);
  return (end + 4095) / 4096 * 4096;
}

inline size_t SegmentBytes(int size, size_t chunk) {
  return DataOffset(size) + (2 * static_cast<size_t>(size) + 2) * chunk;
}

// Whether counter `value` has reached `seq` (wrap-around safe).
inline bool Reached(uint32_t value, uint32_t seq) { return static_cast<int32_t>(value - seq) >= 0; }

static_assert(sizeof(ShmGroup::Header) <= kHeaderBytes);

// "1.5 s"
[[nodiscard]] std::string Seconds(std::chrono::milliseconds ms);

void FutexWait(std::atomic<uint32_t>* word, uint32_t value, std::chrono::nanoseconds wait);
void FutexWake(std::atomic<uint32_t>* word);

}  // namespace common::shm_layout
