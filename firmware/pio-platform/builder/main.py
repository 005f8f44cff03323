"""Builder of the pbkit offline platform: the Debian arm-none-eabi toolchain from PATH, no
flags of its own (firmware/pbkit_env.py adds pbkit's, from host/build.py), and an upload
that runs $UPLOADCMD, which only environments with an `upload_command` (the emulated
netduinoplus2: QEMU) set."""

from os.path import join

from SCons.Script import AlwaysBuild, Builder, Default, DefaultEnvironment

env = DefaultEnvironment()

env.Replace(
    AR="arm-none-eabi-ar",
    AS="arm-none-eabi-as",
    CC="arm-none-eabi-gcc",
    CXX="arm-none-eabi-g++",
    GDB="arm-none-eabi-gdb",
    OBJCOPY="arm-none-eabi-objcopy",
    RANLIB="arm-none-eabi-ranlib",
    SIZETOOL="arm-none-eabi-size",
    ARFLAGS=["rc"],
    SIZEPROGREGEXP=r"^(?:\.isr_vector|\.text|\.ARM\.exidx|\.data)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.stack)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
    PROGSUFFIX=".elf",
)
if env.get("PROGNAME", "program") == "program":
    env.Replace(PROGNAME="firmware")

env.Append(
    BUILDERS=dict(
        ElfToBin=Builder(
            action=env.VerboseAction("$OBJCOPY -O binary $SOURCES $TARGET", "Building $TARGET"),
            suffix=".bin",
        )
    )
)

# No flashing here; an environment's `upload_command` (applied after this script) replaces it.
env.Replace(
    UPLOADCMD='"$PYTHONEXE" -c "import sys; sys.exit(\'Error: the pbkit offline platform cannot flash '
    '$PIOENV; use platformio.ini as it is (platform ststm32) to upload\')"'
)

target_elf = env.BuildProgram()
target_bin = env.ElfToBin(join("$BUILD_DIR", "${PROGNAME}"), target_elf)
AlwaysBuild(env.Alias("nobuild", target_bin))
target_buildprog = env.Alias("buildprog", target_bin, target_bin)
AlwaysBuild(env.Alias("size", target_elf, env.VerboseAction("$SIZEPRINTCMD", "Calculating size $SOURCE")))
AlwaysBuild(env.Alias("upload", target_bin, env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE")))
Default([target_buildprog])
