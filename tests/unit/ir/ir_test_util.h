// Helpers for the IR store tests: temporary stores and synthetic captures.
#pragma once

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "mmsb/ir/record.h"
#include "mmsb/ir/store.h"

#include "temp_dir.h"

namespace mmsb::ir::testing {

using mmsb::testing::TempDir;

inline FunctionRecord Fn(const std::string& name, const std::string& body,
                         Stage stage = Stage::kPre, std::uint64_t shash = 0) {
  FunctionRecord r;
  r.name = name;
  r.stage = stage;
  r.text = "define void @" + name + "() {\n" + body + "\n}\n";
  r.structural_hash = shash != 0 ? shash : std::hash<std::string>()(body);
  r.instructions = static_cast<std::uint32_t>(1 + std::count(body.begin(), body.end(), '\n'));
  r.blocks = 1;
  r.linkage = "external";
  r.file = "/src/" + name + ".cc";
  r.line = 1;
  return r;
}

inline TuCapture Tu(const std::string& source, std::vector<FunctionRecord> fns) {
  TuCapture c;
  c.source = source;
  c.output = source + ".o";
  c.compiler = "clang version 19.1.7";
  c.flags_hash = "0123456789abcdef";
  c.functions = std::move(fns);
  return c;
}

// Runs a scalar query directly against the database file.
inline long long Scalar(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  long long v = -1;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW)
    v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

inline std::string ScalarText(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* st = nullptr;
  std::string v;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
      sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr)
    v = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

}  // namespace mmsb::ir::testing
