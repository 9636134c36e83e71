// Included (-include) into real code that uses no MMSB: one page type makes the plugin analyse
// the whole translation unit and compile the rewritten source, where a TU without MMSB
// attributes would be compiled untouched. Every edit must stay in this file.
#pragma once
struct [[mmsb::page]] MmsbRobustnessMarker {
  int n;
};
[[mmsb::page]] inline MmsbRobustnessMarker mmsb_robustness_marker;
