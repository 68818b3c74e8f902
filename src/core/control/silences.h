// The silence requests of collectd-xmatters(1) SILENCES, answered by the
// running plugin: add and expire change the silences in force and answer
// once the change is durable in the spool; list reads them.
#pragma once

#include "config/config.h"
#include "control/verbs.h"
#include "silence/coverage.h"
#include "silence/silence_book.h"

namespace xmatters::control {

// Adds to verbs, answered with config, book and coverage, which must
// outlive the handlers:
//   silence-add {"matchers": [..], "start"?, "end"? (RFC 3339), "duration"?
//     ("2h"), "comment", "author", "integration"?} -> {"id", "start", "end"}
//     once the silence is durable and in force; an error (one line) for
//     what make_silence refuses or an integration not configured.
//   silence-expire {"ids": [..]} -> {"expired": [..], "unknown": [..]}
//   silences {"expired"?} -> silences_document (views.h)
void add_silence_verbs(Verbs& verbs, const Config& config, SilenceBook& book, const Coverage& coverage);

}  // namespace xmatters::control
