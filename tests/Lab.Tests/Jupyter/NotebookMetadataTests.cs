using Lab.Cli.Notebooks;

namespace Lab.Tests.Jupyter;

/// <summary>Every chapter carries the metadata that makes Jupyter pick the lab's kernel and Polyglot run its cells as C#.</summary>
public class NotebookMetadataTests
{
    public static TheoryData<string> Chapters()
    {
        var data = new TheoryData<string>();
        var dir = Path.Combine(RepoRoot.Path, "notebooks");
        if (Directory.Exists(dir))
            foreach (var f in Directory.GetFiles(dir, "*.ipynb").OrderBy(f => f, StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        // Without chapters yet the theory still runs once, on a notebook the helper made.
        if (data.Count == 0) data.Add("");
        return data;
    }

    [Theory]
    [MemberData(nameof(Chapters))]
    public void EveryChapterCarriesTheKernelAndPolyglotMetadata(string chapter)
    {
        var nb = chapter.Length > 0
            ? Notebook.Load(Path.Combine(RepoRoot.Path, "notebooks", chapter))
            : NotebookMetadata.Apply(Notebook.Parse(Bare));
        var problems = NotebookMetadata.Problems(nb);
        Assert.True(problems.Count == 0, $"{(chapter.Length > 0 ? chapter : "a notebook made by NotebookMetadata.Apply")} lacks metadata (notebooks/CONVENTIONS.md):\n  " + string.Join("\n  ", problems));
    }

    const string Bare = """
        {"cells": [
          {"cell_type": "markdown", "id": "a", "metadata": {}, "source": "# T"},
          {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": null, "outputs": [], "source": "1 + 1"}
        ], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
        """;

    [Fact]
    public void ANotebookLackingItIsNamedCellByCell()
    {
        var problems = NotebookMetadata.Problems(Notebook.Parse(Bare));
        Assert.Contains("metadata.kernelspec.name is missing (expected \"lab-csharp\")", problems);
        Assert.Contains("metadata.polyglot_notebook.kernelInfo.items has no {\"name\": \"csharp\"}", problems);
        Assert.Contains("cell 2 (id b): metadata.polyglot_notebook.kernelName is missing (expected \"csharp\")", problems);
        Assert.DoesNotContain(problems, p => p.StartsWith("cell 1"));

        // A kernelspec pointing at the archived .NET Interactive kernel is named too.
        var old = Notebook.Parse(Bare.Replace("\"metadata\": {}, \"nbformat\"",
            "\"metadata\": {\"kernelspec\": {\"name\": \".net-csharp\", \"display_name\": \".NET (C#)\", \"language\": \"C#\"}}, \"nbformat\""));
        Assert.Contains("metadata.kernelspec.name is \".net-csharp\", expected \"lab-csharp\"", NotebookMetadata.Problems(old));
    }

    [Fact]
    public void TheKernelFixtureCarriesIt()
    {
        var nb = Notebook.Load(Path.Combine(AppContext.BaseDirectory, "Fixtures", "jupyter", "01-kernel.ipynb"));
        Assert.Empty(NotebookMetadata.Problems(nb));
    }
}
