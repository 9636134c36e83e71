// Predicates over typed fields, and bisect: the first epoch where one holds.
//
// Exact bisect evaluates the predicate once at the start of the range and then only at epochs
// where one of the fields it reads changed or one of their pages was created or freed: the
// predicate's value cannot change anywhere else, so skipping the other epochs loses nothing.
// `monotone` bisect binary-searches those same candidate epochs instead.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <map>
#include <set>

#include <fmt/format.h>

#include "mmsb/query.h"

#include "query/walk.h"

namespace mmsb::query {

// A number as the predicate computes with it: integers stay exact (64-bit mantissa), and `/`
// and `%` of two integers are integer operations, as in C.
struct Num {
  long double v = 0;
  bool integer = true;
};

struct Predicate::Node {
  enum class Op {
    kNum,
    kField,
    kNeg,
    kNot,
    kAdd,
    kSub,
    kMul,
    kDiv,
    kMod,
    kLt,
    kLe,
    kGt,
    kGe,
    kEq,
    kNe,
    kAnd,
    kOr
  };
  Op op = Op::kNum;
  Num num;
  std::size_t field = 0;
  std::shared_ptr<const Node> a, b;
};

namespace {

using Node = Predicate::Node;

Num LoadField(const FieldRef& f, std::span<const std::uint8_t> b) {
  auto get = [&](auto v) {
    std::memcpy(&v, b.data(), std::min(sizeof(v), b.size()));
    return v;
  };
  switch (f.kind) {
    case ScalarKind::kBool:
      return {get(std::uint8_t{}) != 0 ? 1.0L : 0.0L, true};
    case ScalarKind::kChar:
    case ScalarKind::kI8:
      return {static_cast<long double>(get(std::int8_t{})), true};
    case ScalarKind::kI16:
      return {static_cast<long double>(get(std::int16_t{})), true};
    case ScalarKind::kI32:
      return {static_cast<long double>(get(std::int32_t{})), true};
    case ScalarKind::kI64:
      return {static_cast<long double>(get(std::int64_t{})), true};
    case ScalarKind::kF32:
      return {static_cast<long double>(get(float{})), false};
    case ScalarKind::kF64:
      return {static_cast<long double>(get(double{})), false};
    default: {  // unsigned, pointers, small opaque fields: little-endian unsigned
      std::uint64_t v = 0;
      std::memcpy(&v, b.data(), std::min<std::size_t>(8, b.size()));
      return {static_cast<long double>(v), true};
    }
  }
}

bool Truth(const Num& n) { return n.v != 0 && !std::isnan(n.v); }

Num Eval(const Node& n, const std::vector<FieldRef>& fields,
         std::span<const std::vector<std::uint8_t>> values) {
  using Op = Node::Op;
  auto bin = [&](auto f) {
    const Num x = Eval(*n.a, fields, values), y = Eval(*n.b, fields, values);
    return f(x, y);
  };
  // A comparison with no value (a division by zero) is false, != included.
  auto cmp = [&](auto f) {
    return bin([&](Num x, Num y) {
      if (std::isnan(x.v) || std::isnan(y.v)) return Num{0.0L, true};
      return Num{f(x.v, y.v) ? 1.0L : 0.0L, true};
    });
  };
  switch (n.op) {
    case Op::kNum:
      return n.num;
    case Op::kField:
      return LoadField(fields[n.field], values[n.field]);
    case Op::kNeg: {
      Num x = Eval(*n.a, fields, values);
      x.v = -x.v;
      return x;
    }
    case Op::kNot:
      return {Truth(Eval(*n.a, fields, values)) ? 0.0L : 1.0L, true};
    case Op::kAdd:
      return bin([](Num x, Num y) { return Num{x.v + y.v, x.integer && y.integer}; });
    case Op::kSub:
      return bin([](Num x, Num y) { return Num{x.v - y.v, x.integer && y.integer}; });
    case Op::kMul:
      return bin([](Num x, Num y) { return Num{x.v * y.v, x.integer && y.integer}; });
    case Op::kDiv:
      return bin([](Num x, Num y) {
        if (y.v == 0) return Num{NAN, false};  // no value: every comparison with it is false
        if (x.integer && y.integer) return Num{std::trunc(x.v / y.v), true};
        return Num{x.v / y.v, false};
      });
    case Op::kMod:
      return bin([](Num x, Num y) {
        if (y.v == 0) return Num{NAN, false};
        return Num{std::fmod(x.v, y.v), x.integer && y.integer};
      });
    case Op::kLt:
      return cmp([](long double x, long double y) { return x < y; });
    case Op::kLe:
      return cmp([](long double x, long double y) { return x <= y; });
    case Op::kGt:
      return cmp([](long double x, long double y) { return x > y; });
    case Op::kGe:
      return cmp([](long double x, long double y) { return x >= y; });
    case Op::kEq:
      return cmp([](long double x, long double y) { return x == y; });
    case Op::kNe:
      return cmp([](long double x, long double y) { return x != y; });
    case Op::kAnd:
      return {Truth(Eval(*n.a, fields, values)) && Truth(Eval(*n.b, fields, values)) ? 1.0L : 0.0L,
              true};
    case Op::kOr:
      return {Truth(Eval(*n.a, fields, values)) || Truth(Eval(*n.b, fields, values)) ? 1.0L : 0.0L,
              true};
  }
  return {};
}

// Recursive descent, C precedence: || < && < comparisons (== != < <= > >=) < + - < * / % < unary.
class Parser {
 public:
  Parser(const LogIndex& index, std::string_view text, std::vector<FieldRef>* fields)
      : index_(index), s_(text), fields_(fields) {}

  Expected<std::shared_ptr<const Node>> Parse() {
    auto n = Or();
    if (!error_.empty()) return InvalidArgument(error_);
    Space();
    if (pos_ != s_.size()) {
      return InvalidArgument(
          fmt::format("unexpected '{}' at column {} of '{}'", s_.substr(pos_, 8), pos_ + 1, s_));
    }
    return n;
  }

 private:
  using P = std::shared_ptr<const Node>;
  void Space() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_]))) ++pos_;
  }
  bool Eat(std::string_view tok) {
    Space();
    if (s_.substr(pos_).starts_with(tok)) {
      pos_ += tok.size();
      return true;
    }
    return false;
  }
  P Make(Node::Op op, P a, P b) {
    auto n = std::make_shared<Node>();
    n->op = op;
    n->a = std::move(a);
    n->b = std::move(b);
    return n;
  }
  void Fail(std::string m) {
    if (error_.empty()) error_ = std::move(m);
  }
  P Or() {
    P l = And();
    while (error_.empty() && Eat("||")) l = Make(Node::Op::kOr, l, And());
    return l;
  }
  P And() {
    P l = Cmp();
    while (error_.empty() && Eat("&&")) l = Make(Node::Op::kAnd, l, Cmp());
    return l;
  }
  P Cmp() {
    P l = Sum();
    for (;;) {
      if (!error_.empty()) return l;
      if (Eat("=="))
        l = Make(Node::Op::kEq, l, Sum());
      else if (Eat("!="))
        l = Make(Node::Op::kNe, l, Sum());
      else if (Eat("<="))
        l = Make(Node::Op::kLe, l, Sum());
      else if (Eat(">="))
        l = Make(Node::Op::kGe, l, Sum());
      else if (Eat("<"))
        l = Make(Node::Op::kLt, l, Sum());
      else if (Eat(">"))
        l = Make(Node::Op::kGt, l, Sum());
      else
        return l;
    }
  }
  P Sum() {
    P l = Product();
    for (;;) {
      if (!error_.empty()) return l;
      if (Eat("+"))
        l = Make(Node::Op::kAdd, l, Product());
      else if (Eat("-"))
        l = Make(Node::Op::kSub, l, Product());
      else
        return l;
    }
  }
  P Product() {
    P l = Unary();
    for (;;) {
      if (!error_.empty()) return l;
      if (Eat("*"))
        l = Make(Node::Op::kMul, l, Unary());
      else if (Eat("/"))
        l = Make(Node::Op::kDiv, l, Unary());
      else if (Eat("%"))
        l = Make(Node::Op::kMod, l, Unary());
      else
        return l;
    }
  }
  P Unary() {
    if (Eat("-")) return Make(Node::Op::kNeg, Unary(), nullptr);
    if (Eat("!")) {
      Space();
      return Make(Node::Op::kNot, Unary(), nullptr);
    }
    return Primary();
  }
  P Primary() {
    auto n = std::make_shared<Node>();
    Space();
    if (pos_ >= s_.size()) {
      Fail(fmt::format("'{}' ends where a value was expected", s_));
      return n;
    }
    if (Eat("(")) {
      P inner = Or();
      if (!Eat(")")) Fail(fmt::format("missing ')' at column {} of '{}'", pos_ + 1, s_));
      return inner;
    }
    const char c = s_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') return Number();
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') return FieldOrWord();
    Fail(fmt::format("unexpected '{}' at column {} of '{}'", c, pos_ + 1, s_));
    return n;
  }
  P Number() {
    auto n = std::make_shared<Node>();
    std::size_t end = pos_;
    if (s_.substr(pos_).starts_with("0x") || s_.substr(pos_).starts_with("0X")) {
      std::uint64_t v = 0;
      auto r = std::from_chars(s_.data() + pos_ + 2, s_.data() + s_.size(), v, 16);
      if (r.ec != std::errc()) {
        Fail(fmt::format("bad hex number at column {} of '{}'", pos_ + 1, s_));
        return n;
      }
      n->num = {static_cast<long double>(v), true};
      pos_ = r.ptr - s_.data();
      return n;
    }
    bool integer = true;
    while (end < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[end])) ||
                               s_[end] == '.' || s_[end] == 'e' || s_[end] == 'E' ||
                               ((s_[end] == '-' || s_[end] == '+') && end > pos_ &&
                                (s_[end - 1] == 'e' || s_[end - 1] == 'E')))) {
      if (!std::isdigit(static_cast<unsigned char>(s_[end]))) integer = false;
      ++end;
    }
    const std::string text(s_.substr(pos_, end - pos_));
    char* stop = nullptr;
    const long double v = std::strtold(text.c_str(), &stop);
    if (stop != text.c_str() + text.size()) {
      Fail(fmt::format("'{}' is not a number", text));
      return n;
    }
    n->num = {v, integer};
    pos_ = end;
    return n;
  }
  P FieldOrWord() {
    auto n = std::make_shared<Node>();
    std::size_t end = pos_;
    int depth = 0;
    while (end < s_.size()) {
      const char c = s_[end];
      if (c == '[') ++depth;
      if (c == ']') --depth;
      if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':' ||
          c == '[' || c == ']' || (c == '*' && depth > 0)) {
        ++end;
      } else {
        break;
      }
    }
    const std::string_view word = s_.substr(pos_, end - pos_);
    pos_ = end;
    if (word == "true" || word == "false") {
      n->num = {word == "true" ? 1.0L : 0.0L, true};
      return n;
    }
    auto refs = ResolveFields(index_, word);
    if (!refs.ok()) {
      Fail(refs.status().message());
      return n;
    }
    if (refs->size() != 1) {
      Fail(
          fmt::format("'{}' names {} fields; a predicate reads one scalar per name (index it: "
                      "{}[N], or name the page instead of the type)",
                      word, refs->size(), word));
      return n;
    }
    const FieldRef& f = refs->front();
    if (f.kind == ScalarKind::kBytes && f.size > 8) {
      Fail(fmt::format("'{}' is {} opaque bytes, not a number", word, f.size));
      return n;
    }
    n->op = Node::Op::kField;
    for (std::size_t i = 0; i < fields_->size(); ++i) {
      if ((*fields_)[i].page == f.page && (*fields_)[i].offset == f.offset) {
        n->field = i;
        return n;
      }
    }
    n->field = fields_->size();
    fields_->push_back(f);
    return n;
  }

  const LogIndex& index_;
  std::string_view s_;
  std::size_t pos_ = 0;
  std::vector<FieldRef>* fields_;
  std::string error_;
};

}  // namespace

Expected<Predicate> Predicate::Parse(const LogIndex& index, std::string_view text) {
  Predicate p;
  Parser parser(index, text, &p.fields_);
  auto root = parser.Parse();
  if (!root.ok()) return root.status();
  p.root_ = std::move(*root);
  return p;
}

bool Predicate::Eval(std::span<const std::vector<std::uint8_t>> values) const {
  return Truth(query::Eval(*root_, fields_, values));
}

// ---- bisect -------------------------------------------------------------------------------------

namespace {

// The predicate's pages as cursors, positioned at an epoch.
class State {
 public:
  Status Init(const LogIndex& index, const Predicate& p) {
    index_ = &index;
    p_ = &p;
    std::map<PageId, std::uint64_t> masks;
    for (const FieldRef& f : p.fields()) {
      const IndexedPage* pg = index.FindPage(f.page);
      masks[f.page] |= LogIndex::BucketMask(pg ? pg->size : 0, f.offset, f.size);
    }
    cursors_.clear();
    for (const auto& [page, mask] : masks) {
      auto& c = cursors_.emplace_back(std::make_unique<PageCursor>());
      MMSB_RETURN_IF_ERROR(c->Init(index, page, mask));
    }
    values_.assign(p.fields().size(), {});
    return Status::Ok();
  }
  Status ApplyThrough(Epoch e) {
    for (auto& c : cursors_) MMSB_RETURN_IF_ERROR(c->ApplyThrough(e));
    return Status::Ok();
  }
  Epoch NextEpoch() const {
    Epoch n = kNoEpoch;
    for (const auto& c : cursors_) n = std::min(n, c->NextEpoch());
    return n;
  }
  PageCursor* Cursor(PageId id) {
    for (auto& c : cursors_) {
      if (c->page().id == id) return c.get();
    }
    return nullptr;
  }
  // False where a page the predicate reads does not exist at `e`.
  bool Holds(Epoch e) {
    const auto& fs = p_->fields();
    for (std::size_t i = 0; i < fs.size(); ++i) {
      PageCursor* c = Cursor(fs[i].page);
      if (c == nullptr || !c->ExistsAt(e)) return false;
      auto b = c->bytes().subspan(fs[i].offset, fs[i].size);
      values_[i].assign(b.begin(), b.end());
    }
    return p_->Eval(values_);
  }
  // The fields' bytes as the cursors hold them now (for the values before the next epoch).
  void Snapshot(std::vector<std::vector<std::uint8_t>>* out) {
    const auto& fs = p_->fields();
    out->resize(fs.size());
    for (std::size_t i = 0; i < fs.size(); ++i) {
      PageCursor* c = Cursor(fs[i].page);
      if (c == nullptr || std::uint64_t{fs[i].offset} + fs[i].size > c->bytes().size()) {
        (*out)[i].clear();
        continue;
      }
      auto b = c->bytes().subspan(fs[i].offset, fs[i].size);
      (*out)[i].assign(b.begin(), b.end());
    }
  }
  // The fields' values at `e` (the cursors must be there); "" where the page does not exist then.
  std::vector<std::string> Values(Epoch e) {
    std::vector<std::string> out;
    for (const FieldRef& f : p_->fields()) {
      PageCursor* c = Cursor(f.page);
      out.push_back(c != nullptr && c->ExistsAt(e) ? FormatField(f, c->bytes()) : std::string());
    }
    return out;
  }

 private:
  const LogIndex* index_ = nullptr;
  const Predicate* p_ = nullptr;
  std::vector<std::unique_ptr<PageCursor>> cursors_;
  std::vector<std::vector<std::uint8_t>> values_;
};

// Epochs in (lo, hi] where the predicate's inputs may change: masked changes, creations, frees.
std::vector<Epoch> Candidates(const LogIndex& index, const Predicate& p, Epoch lo, Epoch hi) {
  std::set<Epoch> out;
  std::map<PageId, std::uint64_t> masks;
  for (const FieldRef& f : p.fields()) {
    const IndexedPage* pg = index.FindPage(f.page);
    masks[f.page] |= LogIndex::BucketMask(pg ? pg->size : 0, f.offset, f.size);
  }
  for (const auto& [page, mask] : masks) {
    const IndexedPage* pg = index.FindPage(page);
    if (pg == nullptr) continue;
    for (Epoch e : {pg->created, pg->freed}) {
      if (e > lo && e <= hi) out.insert(e);
    }
    for (const IndexedChange& c : index.ChangesOf(page)) {
      if (c.epoch > hi) break;
      if (c.epoch > lo && (c.mask & mask) != 0) out.insert(c.epoch);
    }
  }
  return {out.begin(), out.end()};
}

// Describe's result from states already at hand: `before` the fields' bytes at e - 1 (Snapshot
// of the state just before it applied e; no masked change lies between), `after` at e.
void DescribeFrom(const Predicate& p, Epoch e, const std::vector<std::vector<std::uint8_t>>& before,
                  State& after, BisectResult* r) {
  r->found = true;
  r->epoch = e;
  const auto b = after.Values(e);
  for (std::size_t i = 0; i < p.fields().size(); ++i) {
    const FieldRef& f = p.fields()[i];
    const PageCursor* c = after.Cursor(f.page);
    const std::string a = before[i].size() == f.size && c != nullptr && c->ExistsAt(e - 1)
                              ? FormatScalar(f.kind, before[i].data(), f.size)
                              : std::string();
    if (a != b[i]) r->changes.push_back({e, f, a, b[i]});
  }
  r->values = b;
}

Status Describe(const LogIndex& index, const Predicate& p, Epoch e, BisectResult* r) {
  r->found = true;
  r->epoch = e;
  // The fields that changed in e: their values at e - 1 and e.
  State before, after;
  MMSB_RETURN_IF_ERROR(before.Init(index, p));
  MMSB_RETURN_IF_ERROR(after.Init(index, p));
  MMSB_RETURN_IF_ERROR(before.ApplyThrough(e - 1));
  MMSB_RETURN_IF_ERROR(after.ApplyThrough(e));
  const auto a = before.Values(e - 1), b = after.Values(e);
  for (std::size_t i = 0; i < p.fields().size(); ++i) {
    if (a[i] != b[i]) r->changes.push_back({e, p.fields()[i], a[i], b[i]});
  }
  r->values = b;
  return Status::Ok();
}

}  // namespace

Expected<BisectResult> Bisect(const LogIndex& index, const Predicate& p, const BisectOptions& o) {
  BisectResult r;
  const Epoch lo = std::max(o.from, index.first_epoch());
  const Epoch hi = std::min(o.to, index.last_epoch());
  if (lo > hi) return r;
  const std::vector<Epoch> cand = Candidates(index, p, lo, hi);
  if (!o.monotone) {
    State st;
    MMSB_RETURN_IF_ERROR(st.Init(index, p));
    MMSB_RETURN_IF_ERROR(st.ApplyThrough(lo));
    ++r.epochs_evaluated;
    if (st.Holds(lo)) {
      MMSB_RETURN_IF_ERROR(Describe(index, p, lo, &r));
      return r;
    }
    std::vector<std::vector<std::uint8_t>> before;
    for (Epoch e : cand) {
      st.Snapshot(&before);
      MMSB_RETURN_IF_ERROR(st.ApplyThrough(e));
      ++r.epochs_evaluated;
      if (st.Holds(e)) {
        DescribeFrom(p, e, before, st, &r);
        return r;
      }
    }
    return r;
  }
  // Monotone: the predicate is false before some epoch and true from it on; binary search the
  // epochs where it can change (lo itself first).
  auto holds_at = [&](Epoch e) -> Expected<bool> {
    State st;
    MMSB_RETURN_IF_ERROR(st.Init(index, p));
    MMSB_RETURN_IF_ERROR(st.ApplyThrough(e));
    ++r.epochs_evaluated;
    return st.Holds(e);
  };
  auto first = holds_at(lo);
  if (!first.ok()) return first.status();
  if (*first) {
    MMSB_RETURN_IF_ERROR(Describe(index, p, lo, &r));
    return r;
  }
  std::size_t a = 0, b = cand.size();  // answer in [a, b); b: none
  while (a < b) {
    const std::size_t mid = a + (b - a) / 2;
    auto h = holds_at(cand[mid]);
    if (!h.ok()) return h.status();
    if (*h) {
      b = mid;
    } else {
      a = mid + 1;
    }
  }
  if (a < cand.size()) {
    auto h = holds_at(cand[a]);
    if (!h.ok()) return h.status();
    if (*h) MMSB_RETURN_IF_ERROR(Describe(index, p, cand[a], &r));
  }
  return r;
}

}  // namespace mmsb::query
