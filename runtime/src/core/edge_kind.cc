// EdgeKindName (mmsb/graph.h): the edge kinds' printed names, used by the propagation, the log's
// state diff and the CLI alike, so the table lives below all of them.
#include "mmsb/graph.h"

namespace mmsb {

const char* EdgeKindName(EdgeKind k) {
  switch (k) {
    case EdgeKind::kPassthrough:
      return "passthrough";
    case EdgeKind::kProjection:
      return "projection";
    case EdgeKind::kUser:
      return "user";
  }
  return "unknown";
}

}  // namespace mmsb
