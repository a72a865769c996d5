# reports/: CSV reader/writer, projection model, cluster descriptions, calibration
ibc_tap_test(test_csv SOURCES test_csv.c LIBS ibc_reports)
ibc_tap_test(test_project_model SOURCES test_project_model.c LIBS ibc_reports)
ibc_tap_test(test_project_fit SOURCES test_project_fit.c LIBS ibc_reports)
ibc_tap_test(test_project_cmd SOURCES test_project_cmd.c LIBS ibc_reports)
# test_machine: summary.json (cJSON), junit.xml (Debian's junitparser) and ibcoll.prom
# (promtool check metrics) from hostile text and from a real run and a compare.
ibc_tap_test(test_machine SOURCES test_machine.c LIBS ibc_reports TIMEOUT 300)
add_dependencies(test_machine ibcoll)
