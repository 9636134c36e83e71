// The IR store's gc: drops old generations and what only they reference.
#include <string>

#include "sqlite_db.h"
#include "store_impl.h"
#include "store_schema.h"

namespace mmsb::ir {

Expected<GcResult> Store::Gc(int keep) {
  if (keep < 1) return InvalidArgument("gc must keep at least one generation");
  Impl& impl = *impl_;
  impl.ClearCaches();
  GcResult result;
  result.bytes_before = SizeBytes();
  Status s = impl.WriteTransaction([&]() -> Status {
    MMSB_ASSIGN_OR_RETURN(auto q, impl.Prepare("SELECT id FROM generations ORDER BY id DESC "
                                               "LIMIT 1 OFFSET ?1"));
    q.Bind(1, static_cast<std::int64_t>(keep - 1));
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (!found) return Status::Ok();
    std::int64_t oldest_kept = q.Int(0);
    // The open generation still takes captures of the build that opened it: moving inherited
    // captures into it would make that build's next TU look recaptured and open another
    // generation. Keep the generation before it too, which then takes them over.
    MMSB_ASSIGN_OR_RETURN(auto open,
                          impl.Prepare("SELECT max(id) FROM generations WHERE id < ?1 AND "
                                       "EXISTS (SELECT 1 FROM generations WHERE id = ?1 "
                                       "AND is_open = 1)"));
    open.Bind(1, oldest_kept);
    MMSB_ASSIGN_OR_RETURN(auto open_row, open.Step());
    if (open_row && !open.IsNull(0)) oldest_kept = open.Int(0);
    MMSB_ASSIGN_OR_RETURN(auto n, impl.Prepare("SELECT count(*) FROM generations WHERE id < ?1"));
    n.Bind(1, oldest_kept);
    MMSB_ASSIGN_OR_RETURN(auto row, n.Step());
    (void)row;
    result.generations_removed = static_cast<int>(n.Int(0));
    // The oldest kept generation takes over what it inherits from removed generations.
    MMSB_ASSIGN_OR_RETURN(
        auto move, impl.Prepare("UPDATE captures SET gen = ?1 WHERE gen < ?1 AND (gen, tu) IN "
                                "(SELECT MAX(gen), tu FROM captures WHERE gen < ?1 GROUP BY tu) "
                                "AND tu NOT IN (SELECT tu FROM captures WHERE gen = ?1)"));
    move.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(move.Run());
    MMSB_ASSIGN_OR_RETURN(auto del, impl.Prepare("DELETE FROM captures WHERE gen < ?1"));
    del.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(del.Run());
    MMSB_ASSIGN_OR_RETURN(auto delg, impl.Prepare("DELETE FROM generations WHERE id < ?1"));
    delg.Bind(1, oldest_kept);
    MMSB_RETURN_IF_ERROR(delg.Run());
    MMSB_RETURN_IF_ERROR(sql::Exec(
        impl.db(),
        "DELETE FROM manifests WHERE id NOT IN (SELECT manifest FROM captures);"
        "DELETE FROM entries WHERE manifest NOT IN (SELECT id FROM manifests);"
        "DELETE FROM funcs WHERE id NOT IN (SELECT func FROM entries);"
        "DELETE FROM files WHERE id NOT IN (SELECT file FROM entries WHERE file IS NOT NULL);"
        "DELETE FROM tus WHERE id NOT IN (SELECT tu FROM captures);"));
    MMSB_ASSIGN_OR_RETURN(auto blobs, impl.Prepare("DELETE FROM blobs WHERE hash NOT IN "
                                                   "(SELECT text_hash FROM entries)"));
    MMSB_RETURN_IF_ERROR(blobs.Run());
    result.blobs_removed = sqlite3_changes64(impl.db());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  // Give the space back; skipped (not an error) while compiles hold the database open.
  if (result.generations_removed > 0) {
    sqlite3_exec(impl.db(), "VACUUM", nullptr, nullptr, nullptr);
    sqlite3_exec(impl.db(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr);
  }
  result.bytes_after = SizeBytes();
  return result;
}

}  // namespace mmsb::ir
