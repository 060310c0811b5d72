"""fanout's conan 2 recipe, kept in the repository it builds.

    conan create packaging/conan --build=missing -o "fanout/*:with_redis=True"

The recipe calls the project's own CMake (the same install rules CI tests: tests/consumer*,
tests/packaging): options map one to one onto the CMake options, package_info describes what
fanoutConfig.cmake describes, for consumers that use conan's CMakeDeps or PkgConfigDeps instead.
"""
import os

from conan import ConanFile
from conan.errors import ConanInvalidConfiguration
from conan.tools.build import check_min_cppstd
from conan.tools.cmake import CMake, CMakeDeps, CMakeToolchain, cmake_layout
from conan.tools.files import copy, rmdir

required_conan_version = ">=2.0"


class FanoutConan(ConanFile):
    name = "fanout"
    version = "0.1.0"
    description = ("C++20 library and relay that fan real-time messages from upstream WebSocket "
                   "feeds out to many WebSocket clients by topic")
    topics = ("websocket", "pubsub", "fan-out", "market-data", "asio")
    license = "unknown"  # the project has no LICENSE file yet (docs/install.md)
    package_type = "library"
    settings = "os", "arch", "compiler", "build_type"
    options = {
        "shared": [True, False],
        "fPIC": [True, False],
        "with_tls": [True, False],
        "with_redis": [True, False],
        "with_postgres": [True, False],
        "relay": [True, False],
    }
    default_options = {
        "shared": False,
        "fPIC": True,
        "with_tls": True,
        "with_redis": False,
        "with_postgres": False,
        "relay": False,
    }

    @property
    def _repo_root(self):
        return os.path.normpath(os.path.join(self.recipe_folder, "..", ".."))

    def export_sources(self):
        # What the library, the relay and the install rules are built from; not tests or benchmarks.
        for pattern in ("CMakeLists.txt", "README.md", "LICENSE", "cmake/*", "include/*", "src/*",
                        "examples/*", "tools/*", "packaging/debian/*"):
            copy(self, pattern, src=self._repo_root, dst=self.export_sources_folder)

    def config_options(self):
        if self.settings.os == "Windows":
            del self.options.fPIC

    def configure(self):
        if self.options.shared:
            self.options.rm_safe("fPIC")

    def layout(self):
        cmake_layout(self, src_folder=".")

    def requirements(self):
        # Public: their types are in fanout's headers.
        self.requires("asio/1.28.1", transitive_headers=True)
        self.requires("openssl/[>=3 <4]", transitive_headers=True)
        # Private: compiled into libfanout (a static one passes them on to the link).
        self.requires("fmt/10.2.1")
        self.requires("simdjson/3.9.1")
        self.requires("wslay/1.1.1")
        self.requires("http_parser/2.9.4")
        self.requires("zlib/[>=1.2.11 <2]")
        if self.options.with_redis:
            self.requires("hiredis/1.2.0")
        if self.options.with_postgres:
            self.requires("libpq/15.5")
        if self.options.relay:
            self.requires("cli11/2.4.1")
            self.requires("tomlplusplus/3.4.0")

    def validate(self):
        check_min_cppstd(self, 20)
        if self.settings.os not in ("Linux", "FreeBSD"):
            raise ConanInvalidConfiguration("fanout runs on Linux (epoll, SO_REUSEPORT)")

    def generate(self):
        tc = CMakeToolchain(self)
        tc.cache_variables["FANOUT_INSTALL"] = True
        tc.cache_variables["FANOUT_INSTALL_SERVICE"] = False
        tc.cache_variables["FANOUT_BUILD_TESTS"] = False
        tc.cache_variables["FANOUT_BUILD_EXAMPLES"] = False
        tc.cache_variables["FANOUT_BUILD_RELAY"] = bool(self.options.relay)
        tc.cache_variables["FANOUT_WITH_TLS"] = bool(self.options.with_tls)
        tc.cache_variables["FANOUT_WITH_REDIS"] = bool(self.options.with_redis)
        tc.cache_variables["FANOUT_WITH_POSTGRES"] = bool(self.options.with_postgres)
        tc.generate()
        CMakeDeps(self).generate()

    def build(self):
        cmake = CMake(self)
        cmake.configure()
        cmake.build()

    def package(self):
        for name in ("LICENSE", "README.md"):
            copy(self, name, src=self.source_folder, dst=os.path.join(self.package_folder, "licenses"))
        CMake(self).install()
        # conan describes the package itself (package_info); its own config files would compete.
        rmdir(self, os.path.join(self.package_folder, "lib", "cmake"))
        rmdir(self, os.path.join(self.package_folder, "lib", "pkgconfig"))
        rmdir(self, os.path.join(self.package_folder, "share"))

    def package_info(self):
        self.cpp_info.set_property("cmake_file_name", "fanout")
        self.cpp_info.set_property("cmake_target_name", "fanout::fanout")
        self.cpp_info.set_property("pkg_config_name", "fanout")

        lib = self.cpp_info.components["libfanout"]
        lib.set_property("cmake_target_name", "fanout::fanout")
        lib.set_property("pkg_config_name", "fanout")
        lib.libs = ["fanout"]
        lib.defines = ["ASIO_STANDALONE"]
        lib.requires = ["asio::asio", "openssl::crypto", "fmt::fmt", "simdjson::simdjson", "wslay::wslay",
                        "http_parser::http_parser", "zlib::zlib"]
        if self.options.shared:
            lib.defines.append("FANOUT_SHARED=1")
        if self.options.with_tls:
            lib.defines.append("FANOUT_WITH_TLS=1")
            lib.requires.append("openssl::ssl")
        if self.options.with_redis:
            lib.defines.append("FANOUT_WITH_REDIS=1")
            lib.requires.append("hiredis::hiredislib")  # ConanCenter's component names
        if self.options.with_postgres:
            lib.defines.append("FANOUT_WITH_POSTGRES=1")
            lib.requires.append("libpq::pq")
        if self.settings.os in ("Linux", "FreeBSD"):
            lib.system_libs = ["pthread"]

        if self.options.relay:
            # fanout-relay is an application: the relay's own dependencies are linked into it.
            relay = self.cpp_info.components["relay"]
            relay.requires = ["libfanout", "cli11::cli11", "tomlplusplus::tomlplusplus"]
            relay.bindirs = ["bin"]
            relay.libdirs = []
            relay.includedirs = []
