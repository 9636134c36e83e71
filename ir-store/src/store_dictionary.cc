// The IR store's compression dictionary: choosing, training and storing it (docs/IRStore.md,
// "Compression").
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blob.h"
#include "sqlite_db.h"
#include "store_impl.h"
#include "store_schema.h"

namespace mmsb::ir {

Expected<std::string> Store::Impl::LoadDictionary(std::uint32_t id) {
  MMSB_ASSIGN_OR_RETURN(bool has, HasTable("dicts"));
  if (!has) return NotFound("it has no dictionaries table (schema 1)");
  MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT dict FROM dicts WHERE id=?1"));
  q.Bind(1, static_cast<std::int64_t>(id));
  MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
  if (!found) return NotFound("no such dictionary");
  return std::string(q.Blob(0));
}

Expected<std::optional<Store::Impl::NewDictionary>> Store::Impl::ChooseDictionary(
    const std::vector<std::string_view>& fresh) {
  MMSB_ASSIGN_OR_RETURN(bool has_table, HasTable("dicts"));
  if (has_table) {
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT id, dict FROM dicts ORDER BY created_at_ms "
                                          "DESC, id DESC LIMIT 1"));
    MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
    if (found) {
      if (codec_.dictionary_id() == 0 ||
          codec_.dictionary_id() != static_cast<std::uint64_t>(q.Int(0))) {
        auto id = codec_.UseDictionary(q.Blob(1));
        if (!id.ok() || *id != static_cast<std::uint64_t>(q.Int(0))) {
          MMSB_CHECK(codec_.UseDictionary("").ok());
        }
      }
      return std::optional<NewDictionary>();
    }
  }
  MMSB_CHECK(codec_.UseDictionary("").ok());
  const std::int64_t want = options_.dictionary_training_bytes;
  if (want <= 0 || fresh.empty()) return std::optional<NewDictionary>();
  // Training time grows with the samples: twice the threshold is plenty for one build's
  // vocabulary.
  const std::int64_t cap = 2 * want;
  std::vector<std::string_view> samples;
  std::int64_t total = 0;
  for (std::string_view t : fresh) {
    if (total >= cap) break;
    samples.push_back(t);
    total += static_cast<std::int64_t>(t.size());
  }
  std::vector<std::string> stored;  // owns the texts read back from the store
  if (total < want) {
    // Small TUs: top up with what earlier captures stored (all compressed alone so far).
    MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT hash, raw_size, data FROM blobs"));
    std::vector<std::string> texts;
    while (total < want) {
      MMSB_ASSIGN_OR_RETURN(auto row, q.Step());
      if (!row) break;
      auto text = codec_.Decompress(q.Blob(2), q.Int(1), ToHash(q.Blob(0)));
      if (!text.ok()) continue;  // a damaged blob is no sample; its reader reports it
      total += static_cast<std::int64_t>(text->size());
      texts.push_back(std::move(*text));
    }
    stored = std::move(texts);
    for (const std::string& t : stored) samples.push_back(t);
  }
  if (total < want) return std::optional<NewDictionary>();
  NewDictionary d;
  d.bytes = TrainDictionary(samples);
  d.samples = static_cast<std::int64_t>(samples.size());
  if (d.bytes.empty()) return std::optional<NewDictionary>();
  auto id = codec_.UseDictionary(d.bytes);
  if (!id.ok()) {
    MMSB_CHECK(codec_.UseDictionary("").ok());
    return std::optional<NewDictionary>();
  }
  d.id = *id;
  return std::optional<NewDictionary>(std::move(d));
}

Status Store::Impl::StoreDictionary(const NewDictionary& d,
                                    const std::map<TextHash, const std::string*>& texts,
                                    std::map<TextHash, std::string>& compressed) {
  MMSB_RETURN_IF_ERROR(sql::Exec(db_, schema::kCreateDicts));
  MMSB_ASSIGN_OR_RETURN(auto ins, Prepare("INSERT OR IGNORE INTO dicts(id, created_at_ms, "
                                          "samples, dict) VALUES(?1,?2,?3,?4)"));
  ins.Bind(1, static_cast<std::int64_t>(d.id)).Bind(2, NowMs()).Bind(3, d.samples);
  ins.BindBlob(4, d.bytes.data(), d.bytes.size());
  MMSB_RETURN_IF_ERROR(ins.Run());
  MMSB_ASSIGN_OR_RETURN(auto q, Prepare("SELECT dict FROM dicts WHERE id=?1"));
  q.Bind(1, static_cast<std::int64_t>(d.id));
  MMSB_ASSIGN_OR_RETURN(auto found, q.Step());
  if (!found || q.Blob(0) != d.bytes) {
    MMSB_CHECK(codec_.UseDictionary("").ok());
    for (auto& [hash, data] : compressed) data = codec_.Compress(*texts.at(hash));
  }
  MMSB_ASSIGN_OR_RETURN(auto version, Meta("schema"));
  if (!version || *version != std::to_string(schema::kSchemaVersion)) {
    MMSB_RETURN_IF_ERROR(SetMeta("schema", std::to_string(schema::kSchemaVersion)));
  }
  return Status::Ok();
}

}  // namespace mmsb::ir
