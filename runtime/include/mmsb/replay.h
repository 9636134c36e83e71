// Rebuilding state from a log: the umbrella over replay (mmsb/replayer.h: LogState, Replayer,
// Replay), restore (mmsb/restore.h: RestoreStaticPages) and state diff (mmsb/state_diff.h:
// DiffStates, DiffEpochs). Including it includes all three; include the one you use.
#pragma once

#include "mmsb/replayer.h"
#include "mmsb/restore.h"
#include "mmsb/state_diff.h"
