"""The Jupyter kernel conformance suite (jupyter_kernel_test) against the lab's C# kernel.

Run: JUPYTER_PATH=<prefix>/share/jupyter /usr/bin/python3 -m unittest -v tests/jupyter/test_lab_kernel.py
after `lab jupyter install --prefix <prefix>` (the xunit test JupyterConformanceTests does both).
"""
import unittest

import jupyter_kernel_test


class LabKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = "lab-csharp"
    language_name = "C#"
    file_extension = ".cs"

    code_hello_world = 'Console.WriteLine("hello, world");'
    code_stderr = 'Console.Error.WriteLine("to stderr");'

    completion_samples = [
        {"text": "Console.WriteL", "matches": {"WriteLine"}},
        {"text": "DateTime.UtcN", "matches": {"UtcNow"}},
    ]

    complete_code_samples = ["var x = 1;", "1 + 1", 'Console.WriteLine("x");', "if (true) { }"]
    incomplete_code_samples = ["if (true) {", "void F() {", 'var s = """\nabc']
    invalid_code_samples = ["var x = 1 +;", "int = 5;"]

    code_generate_error = 'throw new InvalidOperationException("boom");'

    code_execute_result = [
        {"code": "6*7", "result": "42"},
        {"code": "new[] { 1, 2 }.Sum()", "result": "3"},
        {"code": "HTML(\"<b>bold</b>\")", "mime": "text/html", "result": "<b>bold</b>"},
    ]

    code_display_data = [
        {"code": "display(42);", "mime": "text/plain"},
        {"code": 'display(HTML("<i>shown</i>"));', "mime": "text/html"},
    ]

    code_history_pattern = "6?7"
    supported_history_operations = ("tail", "range", "search")

    code_inspect_sample = "Console.WriteLine"


if __name__ == "__main__":
    unittest.main()
