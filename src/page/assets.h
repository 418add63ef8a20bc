// Loads the page's assets (CSS, images, fonts) from a folder into memory at start-up.
// Only regular files are read; symlinks are skipped, so nothing outside the folder is ever
// served, and requests never open files.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "core/result.h"
#include "page/response.h"

namespace intermission::page {

inline constexpr std::size_t kMaxAssetBytes = 64u << 20;  // all assets together

// Every regular file below `dir`, keyed by its '/'-separated path relative to `dir`.
core::Result<std::map<std::string, Asset>> load_assets(const std::string& dir);

// The Content-Type for a file name, by extension; application/octet-stream when unknown.
std::string content_type_for(const std::string& name);

// Every extension content_type_for() knows (".css"), with its Content-Type; for servers that
// serve the same assets from files and need the same types (nginx's `types {}`).
const std::map<std::string, std::string>& known_content_types();

// A page folder (--page-dir): maintenance.html in the default language, and for each other
// language `maintenance.<tag>.html` ("maintenance.de.html", "maintenance.pt-BR.html"); the
// page's words when there is no reason in `message.txt` and `message.<tag>.txt` (optional,
// plain text, also the JSON's "message"). Any other file named maintenance.* or message.*
// (a bad tag, a message without its page, the default's tag again, a tag twice in other
// letter case) is refused with an error naming it; other files are ignored. At most
// kMaxLanguages languages, kMaxAssetBytes together.
struct PageFolder {
  std::string html_template;
  std::string default_reason;
  std::vector<PageOptions::Translation> translations;  // by tag
};
core::Result<PageFolder> load_page_dir(const std::string& dir, const std::string& default_language);

// Reads a whole file (the page template).
core::Result<std::string> read_file(const std::string& path);

}  // namespace intermission::page
