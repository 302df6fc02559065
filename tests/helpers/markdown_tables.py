"""Reading the Markdown tables the tools print, whatever their column padding."""


def markdown_rows(text: str) -> list:
    """The cells of every table row of ``text`` (header included, alignment rule left out), stripped."""
    rows = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|") and line.endswith("|") and set(line) - set("|-: "):
            rows.append([cell.strip() for cell in line[1:-1].split("|")])
    return rows
