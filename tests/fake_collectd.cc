#include "fake_collectd.h"
