#pragma once
// placeholder
namespace xmatters { class SpoolIo { public: virtual ~SpoolIo() = default; }; }
