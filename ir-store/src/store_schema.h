// IR store schema, shared by the writer (AddCapture) and the readers. See docs/IRStore.md,
// "Store layout". A store is recognised by meta('format') == kFormat; meta('schema') is the
// schema version. A change that old readers cannot read bumps kSchemaVersion.
//
// Versions: 1 had no `dicts` table (every blob compressed alone); 2 adds it. A version-1 store
// is read as it is and becomes version 2 when a writer stores its first dictionary in it
// (kCreateDicts), since only then can a blob need what a version-1 reader lacks.
//
// `captures.unit_hash` (the TU's content hash, which its object's unit note carries) was added
// within version 2: readers that do not know it never name it, so a store that has it reads as
// before, and a store without it gains it (kAddUnitHash) in the first capture that brings a hash.
#pragma once

namespace mmsb::ir::schema {

inline constexpr char kFormat[] = "mmsb-ir";
inline constexpr int kSchemaVersion = 2;

// Executed in one transaction when the database has no tables yet.
inline constexpr char kCreate[] = R"sql(
CREATE TABLE meta(
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;

-- One row per build generation.
CREATE TABLE generations(
  id INTEGER PRIMARY KEY,
  opened_at_ms INTEGER NOT NULL,
  label TEXT,
  is_explicit INTEGER NOT NULL DEFAULT 0,
  is_open INTEGER NOT NULL DEFAULT 0,
  compiler TEXT NOT NULL DEFAULT '',
  flags_hash TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX generations_label ON generations(label) WHERE label IS NOT NULL;

-- A translation unit: one source compiled to one output.
CREATE TABLE tus(
  id INTEGER PRIMARY KEY,
  source TEXT NOT NULL,
  output TEXT NOT NULL,
  UNIQUE(source, output)
);

-- An IR page: a function of a TU (its stages are rows of `entries`).
CREATE TABLE funcs(
  id INTEGER PRIMARY KEY,
  tu INTEGER NOT NULL,
  name TEXT NOT NULL,
  UNIQUE(tu, name)
);

CREATE TABLE files(
  id INTEGER PRIMARY KEY,
  path TEXT NOT NULL UNIQUE
);

-- Content-addressed normalised IR: hash = XXH3-128(text), data = zstd(text).
-- A rowid table (the hash's uniqueness is an index beside it): a WITHOUT ROWID table keeps
-- only about a quarter page of a row in its leaf and puts the rest in overflow pages of its own,
-- which IR blobs of 1-4 KiB mostly leave empty (docs/IRStore.md, "Store layout"). Stores made
-- before this have a WITHOUT ROWID blobs table; every statement reads and writes both alike.
CREATE TABLE blobs(
  hash BLOB PRIMARY KEY,
  raw_size INTEGER NOT NULL,
  data BLOB NOT NULL
);

-- zstd dictionaries the blobs' frames are compressed with (id = the zstd dictionary id the
-- frames name); never removed.
CREATE TABLE dicts(
  id INTEGER PRIMARY KEY,
  created_at_ms INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  dict BLOB NOT NULL
);

-- The function versions of one capture of a TU; shared by every capture with the same content.
CREATE TABLE manifests(
  id INTEGER PRIMARY KEY,
  tu INTEGER NOT NULL,
  hash BLOB NOT NULL,
  UNIQUE(tu, hash)
);

CREATE TABLE entries(
  manifest INTEGER NOT NULL,
  func INTEGER NOT NULL,
  stage INTEGER NOT NULL,
  text_hash BLOB NOT NULL,
  struct_hash INTEGER NOT NULL,
  insts INTEGER NOT NULL,
  blocks INTEGER NOT NULL,
  linkage TEXT NOT NULL,
  file INTEGER,
  line INTEGER NOT NULL,
  pages TEXT NOT NULL,
  PRIMARY KEY(manifest, func, stage)
) WITHOUT ROWID;

-- A TU compiled in a generation.
CREATE TABLE captures(
  gen INTEGER NOT NULL,
  tu INTEGER NOT NULL,
  manifest INTEGER NOT NULL,
  captured_at_ms INTEGER NOT NULL,
  compiler TEXT NOT NULL,
  flags_hash TEXT NOT NULL,
  unit_hash INTEGER,  -- the TU's content hash as a signed 64-bit value; NULL when unknown
  PRIMARY KEY(gen, tu)
) WITHOUT ROWID;
CREATE INDEX captures_tu ON captures(tu, gen);
CREATE INDEX captures_unit ON captures(unit_hash) WHERE unit_hash IS NOT NULL;
)sql";

// What a store made before unit hashes gains in the first capture that brings one.
inline constexpr char kAddUnitHash[] = R"sql(
ALTER TABLE captures ADD COLUMN unit_hash INTEGER;
CREATE INDEX IF NOT EXISTS captures_unit ON captures(unit_hash) WHERE unit_hash IS NOT NULL;
)sql";

// What a version-1 store gains when its first dictionary is stored.
inline constexpr char kCreateDicts[] = R"sql(
CREATE TABLE IF NOT EXISTS dicts(
  id INTEGER PRIMARY KEY,
  created_at_ms INTEGER NOT NULL,
  samples INTEGER NOT NULL,
  dict BLOB NOT NULL
);
)sql";

}  // namespace mmsb::ir::schema
