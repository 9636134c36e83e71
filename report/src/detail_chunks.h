// The column diffs of a log report, grouped into chunks of about kChunkBytes of JSON text
// ({"COLUMN": detail, ...}), each deflated (zlib format, which the browser's
// DecompressionStream("deflate") reads) and base64-encoded. The page inflates a chunk when one of
// its columns is shown, so opening the report parses none of them. Internal to mmsb_report.
#pragma once

#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

#include "mmsb/status.h"

namespace mmsb::report {

class DetailChunks {
 public:
  static constexpr std::size_t kChunkBytes = 256 * 1024;

  // Returns the chunk index the column's detail goes into.
  int Add(std::size_t column, const std::string& detail_json);
  Status Finish();

  nlohmann::json encoded = nlohmann::json::array();

 private:
  void Flush();
  std::string text_;
  Status status_ = Status::Ok();
};

}  // namespace mmsb::report
