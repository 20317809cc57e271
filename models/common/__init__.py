"""Network pieces shared by several families (not tied to one paper)."""
