// The AWS shared config and credentials files (~/.aws/config, ~/.aws/credentials) as the AWS
// CLI reads them: a pure INI parser that keeps each value's file and line, the profile lookup
// ("[name]" in the credentials file, "[profile name]" or "[default]" in the config file), and a
// loader that finds the files (AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE, $HOME/.aws).
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/aws/protocol.h"
#include "core/result.h"

namespace intermission::adapters::aws {

// One value of an INI file, with where it was written ("/home/me/.aws/config:12").
struct IniValue {
  std::string value;
  std::string where;
};

// A parsed INI file: section name -> key (lower-cased) -> value.
struct IniFile {
  std::string path;
  std::map<std::string, std::map<std::string, IniValue>> sections;
};

// Parses INI text as botocore's RawConfigParser does: "[section]" headers, "key = value" or
// "key: value" (key lower-cased, both sides trimmed), whole-line comments starting with '#' or
// ';', indented lines continuing the previous value (the s3 = ... sub-sections). A key before
// any section, a line that is none of these, or a repeated section or key is an error naming
// `path` and the line. Pure.
core::Result<IniFile> parse_ini(std::string_view text, const std::string& path);

// One profile as both files together define it. Where a key is in both files, the credentials
// file wins (as in the CLI). `from_credentials_file` tells which file each key came from.
struct Profile {
  std::string name;
  std::map<std::string, IniValue> values;
  std::map<std::string, bool> from_credentials_file;

  [[nodiscard]] const IniValue* find(const std::string& key) const {
    const auto it = values.find(key);
    return it == values.end() || it->second.value.empty() ? nullptr : &it->second;
  }
};

// The profile `name`: "[name]" in `credentials`, "[profile name]" in `config` (for "default"
// also "[default]"). nullopt when neither file has it. Pure.
std::optional<Profile> find_profile(const IniFile& credentials, const IniFile& config,
                                    const std::string& name);

// Both files, read from disk (a missing file is an empty one; an unreadable or malformed one is
// an error), and the profile name to use (AWS_PROFILE, else AWS_DEFAULT_PROFILE, else
// "default"; `explicit_profile` tells whether one was named).
struct SharedFiles {
  IniFile credentials;
  IniFile config;
  std::string profile = "default";
  bool explicit_profile = false;
};
core::Result<SharedFiles> load_shared_files(const Getenv& getenv);

// The `region` of the profile in use, or "" (no such profile or setting, or files that cannot
// be read: the credentials provider reports those).
std::string profile_region(const Getenv& getenv);

}  // namespace intermission::adapters::aws
