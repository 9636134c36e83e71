// Assembling a report page: the embedded assets and a template filler. Internal to mmsb_report.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace mmsb::report {

namespace assets {
extern const std::string_view kLogReportHtml;
extern const std::string_view kLogReportJs;
extern const std::string_view kIrReportHtml;
extern const std::string_view kIrReportJs;
extern const std::string_view kCommonCss;
extern const std::string_view kCommonJs;
}  // namespace assets

// `tmpl` with every "{{NAME}}" replaced by vars.at(NAME), in one pass (a value is never
// rescanned, so data cannot inject placeholders). An unknown name is left as it is.
std::string FillTemplate(std::string_view tmpl,
                         const std::map<std::string, std::string_view>& vars);

// Text safe inside <script type="application/json">: every '<' becomes \u003c (same JSON value).
std::string ScriptSafe(std::string_view json);

// Text safe inside HTML elements and attributes.
std::string HtmlEscape(std::string_view s);

// The standard page: common CSS and JS, the page's own script, the data, the title.
std::string RenderPage(std::string_view page_template, std::string_view page_js,
                       const std::string& data_json, const std::string& title);

}  // namespace mmsb::report
