"""Reading report files (txt, md, html, pdf, docx in any common encoding) and cutting them into chunks."""
