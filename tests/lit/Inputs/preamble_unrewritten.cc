// Input of shared-preamble.cpp: standard headers whose templates the preamble instantiates (it is
// built because this comment spells mmsb::page), and code that uses many of the same templates
// with its own types; nothing is rewritten, so the object must be plain clang's.
#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace user {
struct P {
  int a;
  std::string s;
};
bool operator<(const P& x, const P& y) { return x.a < y.a; }
}  // namespace user

template <typename T>
std::string Joined(const std::vector<T>& v) {
  std::ostringstream os;
  for (const T& x : v) os << x << ',';
  return os.str();
}

int main(int argc, char** argv) {
  std::vector<user::P> v;
  for (int i = 0; i < argc; ++i) v.push_back({i, argv[i]});
  std::sort(v.begin(), v.end());
  std::map<std::string, int> m;
  std::unordered_map<int, std::string> u;
  for (auto& p : v) {
    m[p.s] = p.a;
    u[p.a] = p.s;
  }
  std::function<int(int)> f = [&](int x) { return x + static_cast<int>(m.size()); };
  std::ostringstream os;
  os << f(3) << u.size() << Joined(std::vector<int>{1, 2, 3});
  std::regex r("a+b");
  const bool ok = std::regex_match(os.str(), r);
  auto sp = std::make_shared<user::P>(user::P{1, "x"});
  std::cout << os.str() << ok << sp->s << std::endl;
  int unused = 0;
  return 0;
}
