#include "html.h"

namespace mmsb::report {

std::string FillTemplate(std::string_view tmpl,
                         const std::map<std::string, std::string_view>& vars) {
  std::string out;
  out.reserve(tmpl.size());
  size_t pos = 0;
  while (pos < tmpl.size()) {
    const size_t open = tmpl.find("{{", pos);
    if (open == std::string_view::npos) break;
    const size_t close = tmpl.find("}}", open + 2);
    if (close == std::string_view::npos) break;
    auto it = vars.find(std::string(tmpl.substr(open + 2, close - open - 2)));
    if (it == vars.end()) {
      out.append(tmpl.substr(pos, open + 2 - pos));
      pos = open + 2;
      continue;
    }
    out.append(tmpl.substr(pos, open - pos));
    out.append(it->second);
    pos = close + 2;
  }
  out.append(tmpl.substr(pos));
  return out;
}

std::string ScriptSafe(std::string_view json) {
  // '<' only occurs inside JSON strings, where \u003c is the same character: no "</script>" and
  // no "<!--" can end or confuse the script element.
  std::string out;
  out.reserve(json.size());
  for (char c : json) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderPage(std::string_view page_template, std::string_view page_js,
                       const std::string& data_json, const std::string& title) {
  const std::string safe = ScriptSafe(data_json);
  const std::string t = HtmlEscape(title);
  return FillTemplate(page_template, {{"CSS", assets::kCommonCss},
                                      {"COMMON_JS", assets::kCommonJs},
                                      {"JS", page_js},
                                      {"DATA", safe},
                                      {"TITLE", t}});
}

}  // namespace mmsb::report
