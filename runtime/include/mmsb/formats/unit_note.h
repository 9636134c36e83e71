// Unit notes: how an object compiled by the MMSB plugin names its translation unit, so that a run
// can name the build it was made from. Format shared by the writer (the plugin, which includes
// this header without linking the runtime) and the reader (the runtime's build record). See
// docs/SerializationSpec.md, "Unit notes".
//
// The plugin writes one ELF note into section `.note.mmsb.unit` of each object it instruments:
// the TU's content hash (XXH3-64 of its captured IR, the hash the IR store records for the
// capture) and its source name. The linker gathers the notes of all objects into a PT_NOTE segment
// of the executable or shared library, where the runtime reads them (dl_iterate_phdr). Nothing in
// a note depends on the IR store or on when it was compiled: the same input gives the same object
// bytes, so reproducible builds and compiler caches keep working.
//
// Header-only, standard library only. Thread-safety: functions without state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace mmsb::unit_note {

inline constexpr char kSection[] = ".note.mmsb.unit";
inline constexpr char kName[] = "MMSB";  // n_namesz = 5 (with the NUL)
inline constexpr std::uint32_t kNameSize = 5;
inline constexpr std::uint32_t kType = 1;             // n_type of a unit note
inline constexpr std::size_t kHashBytes = 8;          // the descriptor's first field
inline constexpr std::size_t kMaxSourceBytes = 4096;  // longer names are cut by the writer

struct Unit {
  std::string source;              // the main source file as the compiler was given it
  std::uint64_t content_hash = 0;  // never 0 in a valid note
};

// The note's descriptor: the content hash (8 bytes, little-endian), then the source name's bytes
// to the end of the descriptor (no NUL). The name is cut to kMaxSourceBytes.
inline std::string EncodeDesc(std::uint64_t content_hash, std::string_view source) {
  std::string d(kHashBytes, '\0');
  for (std::size_t i = 0; i < kHashBytes; ++i)
    d[i] = static_cast<char>((content_hash >> (8 * i)) & 0xff);
  d.append(source.substr(0, kMaxSourceBytes));
  return d;
}

// Walks the ELF notes in `notes` (the contents of one PT_NOTE segment whose alignment is `align`:
// 8 aligns name and descriptor to 8 bytes, anything else to 4) in the host's byte order, and
// appends every unit note to `out`. Other notes are skipped; a unit note whose descriptor is
// shorter than the hash or whose hash is 0 is ignored. Stops at the first note that does not fit
// in `notes`, and never reads outside it.
inline void ParseNotes(std::span<const std::uint8_t> notes, std::size_t align,
                       std::vector<Unit>* out) {
  // As binutils lays notes out: the descriptor starts at the note's header plus name rounded up
  // to the alignment, and the next note after the descriptor, rounded up likewise.
  const std::size_t a = align == 8 ? 8 : 4;
  auto up = [a](std::size_t n) { return (n + a - 1) / a * a; };
  std::size_t at = 0;
  while (notes.size() - at >= 12) {
    std::uint32_t namesz = 0, descsz = 0, type = 0;
    std::memcpy(&namesz, notes.data() + at, 4);
    std::memcpy(&descsz, notes.data() + at + 4, 4);
    std::memcpy(&type, notes.data() + at + 8, 4);
    const std::size_t left = notes.size() - at;
    const std::size_t desc_at = up(12 + std::size_t{namesz});
    if (desc_at > left || descsz > left - desc_at) return;
    const std::uint8_t* name = notes.data() + at + 12;
    const std::uint8_t* desc = notes.data() + at + desc_at;
    if (type == kType && namesz == kNameSize && std::memcmp(name, kName, kNameSize) == 0 &&
        descsz >= kHashBytes) {
      Unit u;
      for (std::size_t i = 0; i < kHashBytes; ++i)
        u.content_hash |= std::uint64_t{desc[i]} << (8 * i);
      u.source.assign(reinterpret_cast<const char*>(desc) + kHashBytes, descsz - kHashBytes);
      if (u.content_hash != 0) out->push_back(std::move(u));
    }
    const std::size_t next = up(desc_at + descsz);
    if (next >= left) return;
    at += next;
  }
}

}  // namespace mmsb::unit_note
