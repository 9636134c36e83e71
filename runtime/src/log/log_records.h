// Payload encodings of the log's record types. See docs/SerializationSpec.md ("Record payloads").
//
// Encoders append to a byte vector. Decoders take untrusted bytes: they check every length
// against the payload before reading or allocating, and return Corruption with a message that
// says which field is wrong (the caller adds file and offset).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mmsb/log.h"
#include "mmsb/type_desc.h"

#include "log/log_format.h"

namespace mmsb::log {

void EncodePageCreate(const LogPageCreate& r, std::vector<std::uint8_t>& out);
Status DecodePageCreate(std::span<const std::uint8_t> in, LogPageCreate* r);

void EncodePageFree(PageId id, std::vector<std::uint8_t>& out);
Status DecodePageFree(std::span<const std::uint8_t> in, PageId* id);

void EncodeTypeDescriptor(const TypeDescriptor& t, std::vector<std::uint8_t>& out);
// Also validates the layout (TypeDescriptor::Validate).
Status DecodeTypeDescriptor(std::span<const std::uint8_t> in, TypeDescriptor* t);

void EncodeCommit(const LogCommit& c, std::vector<std::uint8_t>& out);
Status DecodeCommit(std::span<const std::uint8_t> in, LogCommit* c);

void EncodeEdgeChange(const LogEdgeChange& e, std::vector<std::uint8_t>& out);
Status DecodeEdgeChange(std::span<const std::uint8_t> in, LogEdgeChange* e);

// Event payload: u64 epoch, then the opaque bytes.
void EncodeEvent(Epoch epoch, std::span<const std::uint8_t> bytes, std::vector<std::uint8_t>& out);
Status DecodeEvent(std::span<const std::uint8_t> in, Epoch* epoch,
                   std::span<const std::uint8_t>* bytes);

void EncodeCheckpointMarker(const LogCheckpointMarker& m, std::vector<std::uint8_t>& out);
Status DecodeCheckpointMarker(std::span<const std::uint8_t> in, LogCheckpointMarker* m);

void EncodeRunStart(const LogRunStart& r, std::vector<std::uint8_t>& out);
Status DecodeRunStart(std::span<const std::uint8_t> in, LogRunStart* r);

// Recompute: u32 pages, u32 0.
void EncodeRecompute(const LogRecompute& r, std::vector<std::uint8_t>& out);
Status DecodeRecompute(std::span<const std::uint8_t> in, LogRecompute* r);

// Provenance (format 1.1): site, commit-info and build records.
void EncodeSite(const LogSite& s, std::vector<std::uint8_t>& out);
Status DecodeSite(std::span<const std::uint8_t> in, LogSite* s);
// Commit-info comes in two layouts (docs/SerializationSpec.md, "Provenance"): the compact one
// (type kCompactCommitInfoType, what writers write) and the fixed one (type kCommitInfo, written
// by the first 1.1 writers; still read).
void EncodeCommitInfo(const LogCommitInfo& c, std::vector<std::uint8_t>& out);
// The compact layout's size, and the layout written at `out` (CommitInfoSize(c) bytes).
std::size_t CommitInfoSize(const LogCommitInfo& c);
void EncodeCommitInfoAt(const LogCommitInfo& c, std::uint8_t* out);
Status DecodeCommitInfo(std::span<const std::uint8_t> in, LogCommitInfo* c);
void EncodeFixedCommitInfo(const LogCommitInfo& c, std::vector<std::uint8_t>& out);
Status DecodeFixedCommitInfo(std::span<const std::uint8_t> in, LogCommitInfo* c);
// Either layout, by the record's type byte.
inline Status DecodeAnyCommitInfo(std::uint8_t type, std::span<const std::uint8_t> in,
                                  LogCommitInfo* c) {
  return type == kCompactCommitInfoType ? DecodeCommitInfo(in, c) : DecodeFixedCommitInfo(in, c);
}
void EncodeBuild(const LogBuild& b, std::vector<std::uint8_t>& out);
Status DecodeBuild(std::span<const std::uint8_t> in, LogBuild* b);

// Verify miss (format 1.1): u64 page, u32 offset, u32 length, u64 after_epoch, u64 epoch,
// u8 flags (bit 0: sampled), u8 0, u16 0, str field.
void EncodeVerifyMiss(const LogVerifyMiss& m, std::vector<std::uint8_t>& out);
Status DecodeVerifyMiss(std::span<const std::uint8_t> in, LogVerifyMiss* m);

// Checkpoint page image chunk: u64 page id, u64 epoch (the page's last change), u64 offset of the
// chunk in the page, then the chunk's bytes.
inline constexpr std::size_t kPageImagePrefix = 24;
void EncodePageImagePrefix(PageId id, Epoch epoch, std::uint64_t offset, std::uint8_t* out);
Status DecodePageImageChunk(std::span<const std::uint8_t> in, LogImageChunk* c);

void EncodeCheckpointEnd(const LogCheckpointEnd& e, std::vector<std::uint8_t>& out);
Status DecodeCheckpointEnd(std::span<const std::uint8_t> in, LogCheckpointEnd* e);

// Limits that keep a decoder's allocations proportional to its input.
inline constexpr std::size_t kMaxNameBytes = 1u << 16;

}  // namespace mmsb::log
