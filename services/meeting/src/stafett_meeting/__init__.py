"""The Stafett meeting service.

Meetings of a case: scheduling, invitations (covered by consent), minutes, decisions that the
case service carries out, action items and feedback (DOMAIN.md; docs/meeting.md).
"""
