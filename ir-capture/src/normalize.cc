#include "mmsb/ir/normalize.h"

#include <xxhash.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "llvm/ADT/StringExtras.h"
#include "llvm/IR/Attributes.h"
#include "llvm/IR/DebugInfoMetadata.h"
#include "llvm/IR/DerivedTypes.h"
#include "llvm/IR/GlobalVariable.h"
#include "llvm/IR/InstrTypes.h"
#include "llvm/IR/Instructions.h"
#include "llvm/IR/IntrinsicInst.h"
#include "llvm/IR/Metadata.h"
#include "llvm/IR/ModuleSlotTracker.h"
#include "llvm/Support/raw_ostream.h"

namespace mmsb::ir {

const char* LinkageName(const llvm::GlobalValue& gv) {
  using L = llvm::GlobalValue::LinkageTypes;
  switch (gv.getLinkage()) {
    case L::ExternalLinkage:
      return "external";
    case L::AvailableExternallyLinkage:
      return "available_externally";
    case L::LinkOnceAnyLinkage:
      return "linkonce";
    case L::LinkOnceODRLinkage:
      return "linkonce_odr";
    case L::WeakAnyLinkage:
      return "weak";
    case L::WeakODRLinkage:
      return "weak_odr";
    case L::AppendingLinkage:
      return "appending";
    case L::InternalLinkage:
      return "internal";
    case L::PrivateLinkage:
      return "private";
    case L::ExternalWeakLinkage:
      return "extern_weak";
    case L::CommonLinkage:
      return "common";
  }
  return "external";
}

namespace {

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '$' || c == '.' || c == '_';
}

bool AllDigits(llvm::StringRef s) {
  return !s.empty() && s.find_first_not_of("0123456789") == llvm::StringRef::npos;
}

// Undoes LLVM's \XX escapes in a quoted name.
std::string Unescape(llvm::StringRef s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 2 < s.size() && llvm::isHexDigit(s[i + 1]) &&
        llvm::isHexDigit(s[i + 2])) {
      out += static_cast<char>(llvm::hexFromNibbles(s[i + 1], s[i + 2]));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// A decimal number; `fallback` when it does not fit.
unsigned long Number(llvm::StringRef digits, unsigned long fallback = ULONG_MAX) {
  unsigned long v = 0;
  return digits.getAsInteger(10, v) ? fallback : v;
}

bool IsDebugInfo(const llvm::Metadata* md) {
  return md != nullptr &&
         (llvm::isa<llvm::DINode>(md) || llvm::isa<llvm::DILocation>(md) ||
          llvm::isa<llvm::DIExpression>(md) || llvm::isa<llvm::DIAssignID>(md) ||
          llvm::isa<llvm::DIMacroNode>(md) || llvm::isa<llvm::DIGlobalVariableExpression>(md));
}

std::string Hex8(std::string_view content) {
  char buf[12];
  std::snprintf(buf, sizeof buf, "%08x",
                static_cast<unsigned>(XXH3_64bits(content.data(), content.size())));
  return buf;
}

// A name with LLVM's uniquing suffix (".123") removed; `had_suffix` says whether there was one.
llvm::StringRef StripUniqueSuffix(llvm::StringRef name, bool* had_suffix) {
  const size_t dot = name.rfind('.');
  *had_suffix = dot != llvm::StringRef::npos && dot + 1 < name.size() &&
                AllDigits(name.substr(dot + 1)) && dot > 0;
  return *had_suffix ? name.substr(0, dot) : name;
}

// Reads an identifier after a sigil at text[i]: quoted ("...") or bare. Returns the raw token
// text (without the sigil) and advances `i` past it.
llvm::StringRef ReadIdent(llvm::StringRef text, size_t& i, bool* quoted) {
  *quoted = false;
  if (i < text.size() && text[i] == '"') {
    const size_t close = text.find('"', i + 1);
    if (close == llvm::StringRef::npos) return {};
    llvm::StringRef tok = text.substr(i, close + 1 - i);
    i = close + 1;
    *quoted = true;
    return tok;
  }
  const size_t begin = i;
  while (i < text.size() && IsIdentChar(text[i])) ++i;
  return text.substr(begin, i - begin);
}

}  // namespace

class ModuleNormalizer::Impl {
 public:
  explicit Impl(const llvm::Module& m) : m_(m), mst_(&m, /*ShouldInitializeAllMetadata=*/true) {
    // Unnamed globals are numbered like this by LLVM's SlotTracker.
    for (const llvm::GlobalVariable& g : m.globals())
      if (!g.hasName()) unnamed_globals_.push_back(&g);
    for (const llvm::GlobalAlias& a : m.aliases())
      if (!a.hasName()) unnamed_globals_.push_back(&a);
    for (const llvm::GlobalIFunc& f : m.ifuncs())
      if (!f.hasName()) unnamed_globals_.push_back(&f);
    for (const llvm::Function& f : m)
      if (!f.hasName()) unnamed_globals_.push_back(&f);
  }

  std::string Normalize(const llvm::Function& f);

 private:
  // The node behind a printed "!N". The slot tracker numbers all metadata the first time
  // something is printed with it, so the table is built on the first lookup (after a print).
  const llvm::MDNode* NodeAt(unsigned long slot) {
    if (!md_built_) {
      md_built_ = true;
      llvm::ModuleSlotTracker::MachineMDNodeListType nodes;
      mst_.collectMDNodes(nodes, 0, UINT_MAX);
      for (const auto& [n, node] : nodes) md_by_slot_[n] = node;
    }
    auto it = md_by_slot_.find(slot);
    return it == md_by_slot_.end() ? nullptr : it->second;
  }

  // Per-function numbering and the definitions to list after the body.
  struct Local {
    std::unordered_map<std::string, unsigned> named;  // local name -> position
    std::vector<unsigned> unnamed;                    // printed slot -> position
    std::vector<llvm::AttributeSet> attr_sequence;    // the #N uses, in print order
    size_t attr_next = 0;
    std::vector<llvm::AttributeSet> attrs;  // local #k -> attribute set
    std::vector<const llvm::MDNode*> mds;   // local !k -> node
    std::unordered_map<const llvm::MDNode*, unsigned> md_index;
    std::vector<const llvm::GlobalVariable*> globals;
    std::set<const llvm::GlobalVariable*> global_seen;
    std::vector<const llvm::StructType*> types;
    std::set<const llvm::StructType*> type_seen;
  };

  // How a token stream is being rewritten.
  enum class Mode {
    kBody,     // function text: everything local
    kDropped,  // a dropped line: consume attribute uses only
    kContent,  // module-level content for a canonical name: no local state at all
  };

  void Rewrite(llvm::StringRef text, Mode mode, Local* local, std::string& out);

  const llvm::GlobalValue* GlobalFor(llvm::StringRef token, bool quoted) const {
    if (!quoted && AllDigits(token)) {
      const unsigned long n = Number(token);
      return n < unnamed_globals_.size() ? unnamed_globals_[n] : nullptr;
    }
    return m_.getNamedValue(quoted ? Unescape(token.drop_front().drop_back()) : token.str());
  }

  static bool IsAnonymous(const llvm::GlobalValue* gv) {
    const auto* var = llvm::dyn_cast_or_null<llvm::GlobalVariable>(gv);
    return var != nullptr && (var->hasPrivateLinkage() || !var->hasName());
  }

  const llvm::StructType* TypeFor(llvm::StringRef token, bool quoted) const {
    if (!quoted && AllDigits(token)) return nullptr;
    return llvm::StructType::getTypeByName(
        m_.getContext(), quoted ? Unescape(token.drop_front().drop_back()) : token.str());
  }

  static bool NeedsCanonicalType(const llvm::StructType* st) {
    if (st == nullptr || !st->hasName() || st->isLiteral()) return false;
    bool suffix = false;
    llvm::StringRef base = StripUniqueSuffix(st->getName(), &suffix);
    return suffix || base.ends_with(".anon");
  }

  // "@.str.1a2b3c4d": prefix from the name, suffix from the content.
  std::string CanonicalGlobal(const llvm::GlobalVariable* gv);
  // "%class.anon.1a2b3c4d".
  std::string CanonicalType(const llvm::StructType* st);
  // The definition text after " = ", with module-level canonical names.
  std::string GlobalDefinition(const llvm::GlobalVariable* gv, Mode mode, Local* local);
  std::string TypeBody(const llvm::StructType* st, Mode mode, Local* local);

  const llvm::Module& m_;
  llvm::ModuleSlotTracker mst_;
  bool md_built_ = false;
  std::unordered_map<unsigned long, const llvm::MDNode*> md_by_slot_;
  std::vector<const llvm::GlobalValue*> unnamed_globals_;
  std::unordered_map<const llvm::GlobalVariable*, std::string> global_names_;
  std::unordered_map<const llvm::StructType*, std::string> type_names_;
  std::set<const void*> in_progress_;
};

ModuleNormalizer::ModuleNormalizer(const llvm::Module& module)
    : impl_(std::make_unique<Impl>(module)) {}
ModuleNormalizer::~ModuleNormalizer() = default;

std::string ModuleNormalizer::Normalize(const llvm::Function& f) { return impl_->Normalize(f); }

std::string ModuleNormalizer::Impl::CanonicalGlobal(const llvm::GlobalVariable* gv) {
  auto it = global_names_.find(gv);
  if (it != global_names_.end()) return it->second;
  std::string prefix = "anon";
  if (gv->hasName()) {
    bool suffix = false;
    prefix = StripUniqueSuffix(gv->getName(), &suffix).str();
  }
  // A self-referential initializer refers to itself by a fixed name (not cached).
  if (!in_progress_.insert(gv).second) return "@" + prefix + ".self";
  const std::string content = GlobalDefinition(gv, Mode::kContent, nullptr);
  in_progress_.erase(gv);
  std::string printed = prefix + "." + Hex8(content);
  bool plain = true;
  for (char c : printed) plain = plain && IsIdentChar(c);
  return global_names_.emplace(gv, "@" + (plain ? printed : "\"" + printed + "\"")).first->second;
}

std::string ModuleNormalizer::Impl::CanonicalType(const llvm::StructType* st) {
  auto it = type_names_.find(st);
  if (it != type_names_.end()) return it->second;
  bool suffix = false;
  const std::string base = StripUniqueSuffix(st->getName(), &suffix).str();
  if (!in_progress_.insert(st).second) return "%" + base + ".self";
  const std::string body = TypeBody(st, Mode::kContent, nullptr);
  in_progress_.erase(st);
  std::string printed = base + "." + Hex8(body);
  bool plain = true;
  for (char c : printed) plain = plain && IsIdentChar(c);
  return type_names_.emplace(st, "%" + (plain ? printed : "\"" + printed + "\"")).first->second;
}

std::string ModuleNormalizer::Impl::GlobalDefinition(const llvm::GlobalVariable* gv, Mode mode,
                                                     Local* local) {
  std::string printed;
  {
    llvm::raw_string_ostream os(printed);
    gv->print(os, mst_);
  }
  llvm::StringRef text = printed;
  // "@name = <definition>"; the name may be quoted and contain " = ".
  size_t start = 1;
  bool quoted = false;
  ReadIdent(text, start, &quoted);
  if (text.substr(start).starts_with(" = ")) start += 3;
  std::string out;
  Rewrite(text.substr(start).rtrim("\n"), mode, local, out);
  return out;
}

std::string ModuleNormalizer::Impl::TypeBody(const llvm::StructType* st, Mode mode, Local* local) {
  std::string printed;
  {
    llvm::raw_string_ostream os(printed);
    if (st->isOpaque()) {
      os << "opaque";
    } else {
      os << (st->isPacked() ? "<{ " : "{ ");
      bool first = true;
      for (llvm::Type* e : st->elements()) {
        if (!first) os << ", ";
        first = false;
        e->print(os);
      }
      os << (st->isPacked() ? " }>" : " }");
    }
  }
  std::string out;
  Rewrite(printed, mode, local, out);
  return out;
}

void ModuleNormalizer::Impl::Rewrite(llvm::StringRef text, Mode mode, Local* local,
                                     std::string& out) {
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    if (c == '"') {  // a string: verbatim (LLVM escapes '"' as \22, so no escaped quotes)
      size_t close = text.find('"', i + 1);
      if (close == llvm::StringRef::npos) close = text.size() - 1;
      out.append(text.data() + i, close + 1 - i);
      i = close + 1;
      continue;
    }
    if (c == '%' || c == '@') {
      ++i;
      bool quoted = false;
      llvm::StringRef tok = ReadIdent(text, i, &quoted);
      out += c;
      if (tok.empty()) continue;
      if (c == '%') {
        if (mode == Mode::kBody && local != nullptr) {
          if (!quoted && AllDigits(tok)) {
            const unsigned long slot = Number(tok);
            if (slot < local->unnamed.size()) {
              out += std::to_string(local->unnamed[slot]);
              continue;
            }
          } else {
            auto it =
                local->named.find(quoted ? Unescape(tok.drop_front().drop_back()) : tok.str());
            if (it != local->named.end()) {
              out += std::to_string(it->second);
              continue;
            }
          }
        }
        const llvm::StructType* st = TypeFor(tok, quoted);
        if (NeedsCanonicalType(st)) {
          out.pop_back();
          out += CanonicalType(st);
          if (mode == Mode::kBody && local != nullptr && local->type_seen.insert(st).second)
            local->types.push_back(st);
          continue;
        }
        out += tok.str();
        continue;
      }
      const llvm::GlobalValue* gv = GlobalFor(tok, quoted);
      if (IsAnonymous(gv)) {
        const auto* var = llvm::cast<llvm::GlobalVariable>(gv);
        out.pop_back();
        out += CanonicalGlobal(var);
        if (mode == Mode::kBody && local != nullptr && local->global_seen.insert(var).second)
          local->globals.push_back(var);
        continue;
      }
      out += tok.str();
      continue;
    }
    if (c == '#' && i + 1 < text.size() && llvm::isDigit(text[i + 1])) {
      size_t j = i + 1;
      while (j < text.size() && llvm::isDigit(text[j])) ++j;
      i = j;
      if (local == nullptr || mode == Mode::kContent) {
        out += "#?";
        continue;
      }
      if (local->attr_next >= local->attr_sequence.size()) {
        out += "#?";  // more attribute uses than calls: leave unnumbered rather than guess
        continue;
      }
      const llvm::AttributeSet as = local->attr_sequence[local->attr_next++];
      if (mode == Mode::kDropped) continue;
      unsigned k = 0;
      while (k < local->attrs.size() && local->attrs[k] != as) ++k;
      if (k == local->attrs.size()) local->attrs.push_back(as);
      out += "#" + std::to_string(k);
      continue;
    }
    if (c == '!' && i + 1 < text.size()) {
      if (llvm::isDigit(text[i + 1])) {  // a numbered node
        size_t j = i + 1;
        while (j < text.size() && llvm::isDigit(text[j])) ++j;
        const unsigned long slot = Number(text.substr(i + 1, j - i - 1));
        i = j;
        const llvm::MDNode* node = NodeAt(slot);
        if (node == nullptr || IsDebugInfo(node)) {
          out += "!DI";
          continue;
        }
        if (mode != Mode::kBody || local == nullptr) {
          // Module-level content (a global's initializer): metadata by content hash.
          std::string content;
          llvm::raw_string_ostream os(content);
          node->print(os, mst_, &m_);
          out += "!md." + Hex8(content);
          continue;
        }
        auto [idx, inserted] = local->md_index.emplace(node, local->mds.size());
        if (inserted) local->mds.push_back(node);
        out += "!" + std::to_string(idx->second);
        continue;
      }
      if (IsIdentChar(text[i + 1])) {  // "!kind !N" (an attachment) or "!DIExpression(...)"
        size_t j = i + 1;
        while (j < text.size() && IsIdentChar(text[j])) ++j;
        const llvm::StringRef kind = text.substr(i + 1, j - i - 1);
        if (j + 2 < text.size() && text[j] == ' ' && text[j + 1] == '!' &&
            llvm::isDigit(text[j + 2])) {
          size_t k = j + 2;
          while (k < text.size() && llvm::isDigit(text[k])) ++k;
          const unsigned long slot = Number(text.substr(j + 2, k - j - 2));
          const llvm::MDNode* node = NodeAt(slot);
          if (kind == "dbg" || kind == "srcloc" || node == nullptr || IsDebugInfo(node)) {
            // Drop the attachment and its separator.
            while (!out.empty() && out.back() == ' ') out.pop_back();
            if (!out.empty() && out.back() == ',') out.pop_back();
            i = k;
            continue;
          }
          out.append(text.data() + i, j + 1 - i);  // "!kind "
          i = j + 1;
          continue;  // the node reference is rewritten next
        }
        out.append(text.data() + i, j - i);
        i = j;
        continue;
      }
    }
    out += c;
    ++i;
  }
}

std::string ModuleNormalizer::Impl::Normalize(const llvm::Function& f) {
  Local local;
  {
    unsigned position = 0;
    auto add = [&](const llvm::Value& v) {
      if (v.hasName()) {
        local.named.emplace(v.getName().str(), position++);
      } else {
        local.unnamed.push_back(position++);
      }
    };
    for (const llvm::Argument& a : f.args()) add(a);
    if (f.getAttributes().hasFnAttrs())
      local.attr_sequence.push_back(f.getAttributes().getFnAttrs());
    for (const llvm::BasicBlock& bb : f) {
      add(bb);
      for (const llvm::Instruction& inst : bb) {
        if (!inst.getType()->isVoidTy()) add(inst);
        if (const auto* call = llvm::dyn_cast<llvm::CallBase>(&inst)) {
          if (call->getAttributes().hasFnAttrs())
            local.attr_sequence.push_back(call->getAttributes().getFnAttrs());
        }
      }
    }
  }

  std::string printed;
  {
    llvm::raw_string_ostream os(printed);
    // Value::print with the shared slot tracker (Function::print would number the module anew).
    static_cast<const llvm::Value&>(f).print(os, mst_);
  }

  std::string out;
  out.reserve(printed.size());
  llvm::StringRef rest = printed;
  bool started = false;
  bool after_define = false;  // the previous kept line was the `define` line
  std::string scratch;
  while (!rest.empty()) {
    auto [line, tail] = rest.split('\n');
    rest = tail;
    const llvm::StringRef trimmed = line.ltrim();
    if (!started && trimmed.empty()) continue;
    if (line.starts_with("; Function Attrs:")) continue;
    if (trimmed.starts_with("#dbg_")) continue;  // a debug record: no attribute uses
    if (trimmed.contains("@llvm.dbg.")) {        // an old-style debug intrinsic call
      scratch.clear();
      Rewrite(line, Mode::kDropped, &local, scratch);
      continue;
    }
    started = true;
    const bool first_in_body = after_define;
    after_define = line.starts_with("define");
    // A block label at the start of the line ("12:" or "name:").
    if (!line.empty() && line[0] != ' ' && line[0] != ';' && !line.starts_with("define") &&
        line[0] != '}') {
      size_t j = 0;
      bool quoted = false;
      llvm::StringRef tok = ReadIdent(line, j, &quoted);
      if (!tok.empty() && j < line.size() && line[j] == ':') {
        // The entry block prints a label only when it has a name: drop it, as for an unnamed one.
        if (first_in_body) continue;
        bool mapped = false;
        if (!quoted && AllDigits(tok)) {
          const unsigned long slot = Number(tok);
          if (slot < local.unnamed.size()) {
            out += std::to_string(local.unnamed[slot]);
            mapped = true;
          }
        } else {
          auto it = local.named.find(quoted ? Unescape(tok.drop_front().drop_back()) : tok.str());
          if (it != local.named.end()) {
            out += std::to_string(it->second);
            mapped = true;
          }
        }
        if (!mapped) out += tok.str();
        out += ':';
        // Re-pad the "; preds = ..." comment as LLVM pads it after a numbered label (column
        // 50), so that the length of a block's name does not show.
        line = line.substr(j + 1).ltrim();
        if (!line.empty()) {
          const size_t line_start = out.rfind('\n') + 1;  // npos + 1 == 0
          out.append(std::max<size_t>(1, 50 - std::min<size_t>(50, out.size() - line_start)), ' ');
        }
      }
    }
    Rewrite(line, Mode::kBody, &local, out);
    while (!out.empty() && out.back() == ' ') out.pop_back();
    out += '\n';
  }
  while (out.size() >= 2 && out[out.size() - 1] == '\n' && out[out.size() - 2] == '\n')
    out.pop_back();

  // The definitions the body refers to, numbered as the body numbers them. Listing one can
  // discover more (a table of strings, nested metadata), so loop until nothing is new.
  std::vector<std::string> types, globals, mds;
  size_t ti = 0, gi = 0, mi = 0;
  while (ti < local.types.size() || gi < local.globals.size() || mi < local.mds.size()) {
    for (; ti < local.types.size(); ++ti) {
      const llvm::StructType* st = local.types[ti];
      types.push_back(CanonicalType(st) + " = type " + TypeBody(st, Mode::kBody, &local));
    }
    for (; gi < local.globals.size(); ++gi) {
      const llvm::GlobalVariable* gv = local.globals[gi];
      globals.push_back(CanonicalGlobal(gv) + " = " + GlobalDefinition(gv, Mode::kBody, &local));
    }
    for (; mi < local.mds.size(); ++mi) {
      std::string printed_md;
      {
        llvm::raw_string_ostream os(printed_md);
        local.mds[mi]->print(os, mst_, &m_);
      }
      llvm::StringRef md = printed_md;
      const size_t eq = md.find(" = ");
      if (eq != llvm::StringRef::npos) md = md.substr(eq + 3);
      std::string line = "!" + std::to_string(mi) + " = ";
      Rewrite(md.rtrim("\n"), Mode::kBody, &local, line);
      mds.push_back(std::move(line));
    }
  }
  if (!types.empty() || !globals.empty() || !local.attrs.empty() || !mds.empty()) out += '\n';
  for (const std::string& s : types) out += s + "\n";
  for (const std::string& s : globals) out += s + "\n";
  for (size_t k = 0; k < local.attrs.size(); ++k)
    out += "attributes #" + std::to_string(k) + " = { " + local.attrs[k].getAsString(true) + " }\n";
  for (const std::string& s : mds) out += s + "\n";
  return out;
}

}  // namespace mmsb::ir
