"""Community: friends, boards, posts, feedback, moderation and the support inbox."""
