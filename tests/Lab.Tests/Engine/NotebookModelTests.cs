using System.Text.Json.Nodes;
using Lab.Cli.Notebooks;

namespace Lab.Tests.Engine;

public class NotebookModelTests
{
    const string Old = """
        {"cells": [
          {"cell_type": "markdown", "metadata": {"tags": ["intro"]}, "source": "# Title\nprose"},
          {"cell_type": "code", "execution_count": 7, "metadata": {"polyglot_notebook": {"kernelName": "csharp"}},
           "outputs": [{"output_type": "stream", "name": "stdout", "text": ["old\n"]}], "source": ["var x = 1;\n", "x"]}
        ],
         "metadata": {"kernelspec": {"name": ".net-csharp", "display_name": ".NET (C#)", "language": "C#"}, "custom": {"keep": true}},
         "nbformat": 4, "nbformat_minor": 4}
        """;

    [Fact]
    public void ReadingDropsOutputsKeepsMetadataAndWritingGivesCellIds()
    {
        var nb = Notebook.Parse(Old);
        Assert.Equal("Title", nb.Title);
        Assert.Equal("var x = 1;\nx", nb.Cells[1].Source);
        Assert.Empty(nb.Cells[1].Outputs);
        var written = JsonNode.Parse(nb.ToJson())!;
        Assert.Equal(5, (int)written["nbformat_minor"]!);
        Assert.True((bool)written["metadata"]!["custom"]!["keep"]!);
        Assert.Equal("csharp", (string?)written["cells"]![1]!["metadata"]!["polyglot_notebook"]!["kernelName"]);
        Assert.Equal("intro", (string?)written["cells"]![0]!["metadata"]!["tags"]![0]);
        var ids = written["cells"]!.AsArray().Select(c => (string?)c!["id"]).ToList();
        Assert.All(ids, id => Assert.Matches("^[a-zA-Z0-9-_]{1,64}$", id));
        Assert.Equal(2, ids.Distinct().Count());
        Assert.Equal(new[] { "var x = 1;\n", "x" }, written["cells"]![1]!["source"]!.AsArray().Select(x => (string?)x));
        Assert.Empty(written["cells"]![1]!["outputs"]!.AsArray());
        Assert.Null(written["cells"]![1]!["execution_count"]);
        Assert.Single(Notebook.Parse(Old, keepOutputs: true).Cells[1].Outputs);
    }
}
