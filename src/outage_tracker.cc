// placeholder: being written
#include "outage_tracker.h"
