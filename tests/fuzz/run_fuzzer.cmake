# Runs one libFuzzer binary for a bounded time on a fresh copy of its corpus (the checked-in
# corpus is never written to). Fails when the fuzzer exits non-zero: a crash, a sanitizer report,
# a leak, a timeout of one input or the RSS limit.
# Variables: FUZZER, CORPUS, WORK, SECONDS, RSS_MB; DICT (used when the file exists).
foreach(var FUZZER CORPUS WORK SECONDS RSS_MB)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "run_fuzzer.cmake: ${var} is not set")
  endif()
endforeach()

file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB seeds ${CORPUS}/*)
if(seeds)
  file(COPY ${seeds} DESTINATION ${WORK}/corpus)
endif()

set(dict_arg)
if(DEFINED DICT AND EXISTS ${DICT})
  set(dict_arg -dict=${DICT})
endif()

execute_process(
  COMMAND ${FUZZER}
    -max_total_time=${SECONDS}
    -rss_limit_mb=${RSS_MB}
    -timeout=10
    -max_len=4096
    -print_final_stats=1
    ${dict_arg}
    -artifact_prefix=${WORK}/artifacts/
    ${WORK}/corpus
  WORKING_DIRECTORY ${WORK}
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${FUZZER} failed (exit ${rc}); reproducer in ${WORK}/artifacts")
endif()
