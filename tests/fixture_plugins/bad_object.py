"""A plugin that registers something that is not a Skill."""

import routerd


class NotASkill:
    name = "half_a_skill"


@routerd.hookimpl
def register_skills(register, context):
    register(NotASkill())
