# The same flags as CMakeLists.txt (the cmake-js build): warnings, NDEBUG in Release, and
# NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED, so node-addon-api's external ArrayBuffer/Buffer constructors do
# not compile (Electron's V8 memory cage refuses external buffers; test/api/59-packaging checks both files).
{
  "target_defaults": {
    "cflags_cc": ["-std=c++17", "-fexceptions", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fno-strict-aliasing"],
    "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
    "include_dirs": ["native/include", "native"],
    "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED"],
    "configurations": {
      "Release": { "defines": ["NDEBUG"] }
    }
  },
  "targets": [
    {
      "target_name": "flashdip_core",
      "type": "static_library",
      "sources": ["<!@(node scripts/sources.js core)"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["flashdip_x86"] }],
        ["target_arch=='arm64'", {
          "sources": ["<!@(node scripts/sources.js arm)"],
          "dependencies": ["flashdip_arm_dotprod"]
        }]
      ]
    },
    {
      "target_name": "flashdip_x86",
      "type": "static_library",
      "conditions": [
        ["target_arch=='x64'", {
          "sources": ["<!@(node scripts/sources.js x86)"],
          "cflags_cc": ["-mavx2", "-mfma", "-mf16c"]
        }]
      ]
    },
    {
      "target_name": "flashdip_arm_dotprod",
      "type": "static_library",
      "conditions": [
        ["target_arch=='arm64'", {
          "sources": ["<!@(node scripts/sources.js arm-dotprod)"],
          "cflags_cc": ["-march=armv8.2-a+dotprod+fp16"]
        }]
      ]
    },
    {
      "target_name": "flashdip",
      "sources": ["<!@(node scripts/sources.js addon)"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "dependencies": ["flashdip_core"],
      "conditions": [
        ["target_arch=='x64'", { "dependencies": ["flashdip_x86"] }],
        ["target_arch=='arm64'", { "dependencies": ["flashdip_arm_dotprod"] }]
      ]
    }
  ]
}
