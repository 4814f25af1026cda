"""What a report states about itself and its figures: metadata and quantitative facts, each with its quote."""
