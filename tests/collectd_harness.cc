#include "collectd_harness.h"
