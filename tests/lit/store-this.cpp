// Stores in member functions of page types (implicit and explicit this), and bitfields, which
// mark their enclosing object.
// RUN: %rw %s -- | %strip_comments | FileCheck %s
// RUN: %cxx -fsyntax-only %s
struct [[mmsb::page]] Counter {
  int hits;
  unsigned armed : 1;
  unsigned mode : 3;
  // CHECK: void Hit() { ::mmsb::rt::ws(&(hits))++; ::mmsb::rt::ws(&(this->hits)) += 2; }
  void Hit() { hits++; this->hits += 2; }
  // CHECK: void Arm() { ::mmsb::rt::w(this)->armed = 1; ::mmsb::rt::w(this)->mode = 2; }
  void Arm() { armed = 1; this->mode = 2; }
};
Counter* Get();
void Bits(Counter& c) {
  // CHECK: (*::mmsb::rt::w(&(c))).mode = 5;
  c.mode = 5;
  // CHECK: ::mmsb::rt::w(Get())->armed = 0;
  Get()->armed = 0;
}
