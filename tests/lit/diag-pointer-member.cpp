// Pointer members of page types are logged as raw addresses (a note, -Wno-mmsb-pointer).
// RUN: %cxx -fsyntax-only -Xclang -verify %s
// RUN: %cxx -fsyntax-only -Xclang -verify=silenced -fplugin-arg-mmsb-Wno-mmsb-pointer %s
// silenced-no-diagnostics
struct Node;
struct [[mmsb::page]] List {
  Node* head;  // expected-note {{pointer member 'head' of page type 'List' is logged as raw addresses}}
  int (*fn)(int);  // expected-note {{pointer member 'fn' of page type 'List' is logged as raw addresses}}
  const char* names[2];  // expected-note {{pointer member 'names' of page type 'List' is logged as raw addresses}}
  int count;
};
