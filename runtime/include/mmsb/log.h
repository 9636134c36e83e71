// The transaction log (TLog): durable, checksummed, append-only records of every commit.
//
// A log is a directory (conventionally `run.tlog/`) holding
//   - segments `00000001.seg`, `00000002.seg`, ...: a file header, then framed records
//     (length, type, XXH3 checksums seeded with the log's random id);
//   - checkpoints `ckpt-<epoch>.ckpt` (see mmsb/checkpoint.h);
//   - `LOCK`, held by the one writer.
// Every on-disk byte is described in docs/SerializationSpec.md ("Transaction log").
//
// An epoch is logged as a group: its page-create, type, edge, delta and page-free records (and a
// recompute record where the bus left out the derived deltas of replay-recomputed pages, see
// DerivedPolicy in mmsb/graph.h), then one commit record that names the epoch and counts the
// group. Readers apply a group only when its commit record is present and complete, so a crash
// never leaves half an epoch applied.
//
// This header is the umbrella: the records are in mmsb/log_format.h, writing in mmsb/log_writer.h
// (LogWriter, any caller) and mmsb/log_sink.h (LogSink, the bus's commit sink, see AttachLog),
// reading in mmsb/log_reader.h (LogReader yields records in order with their file and offset);
// mmsb/replay.h rebuilds state.
//
// Including it includes all four; include the one you use.
#pragma once

#include "mmsb/log_format.h"
#include "mmsb/log_reader.h"
#include "mmsb/log_sink.h"
#include "mmsb/log_writer.h"
